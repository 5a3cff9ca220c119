r"""Derivations written in LaTeX: read a ``.tex`` or ``.md`` file into :class:`~.checker.Derivation` objects.

The input is what people write (the seeds): a model header, then display math whose lines are joined by relations::

    % elbocheck model cdvae: p_theta(z_l|c) p(z_u) p_theta(x|z_l,z_u) q_phi(z_l,z_u|x)
    % assume (3)->(4): q(z_l,z_u|x) = q(z_l|x) q(z_u|x)
    % step (6)->(7): \geq

    $$\log p_{\theta}(\mathbf{x}|\mathbf{c}) = \iint q_{\phi}(\mathbf{z}_l, \mathbf{z}_u|\mathbf{x})
      \log p_{\theta}(\mathbf{x}|\mathbf{c}) d\mathbf{z}_l d\mathbf{z}_u \quad (1)$$
    $$= \iint ... \quad (2)$$

HEADER (:mod:`.header`). In ``.tex``: ``%`` comment lines, the first starting with ``elbocheck`` (``%%`` lines
inside are remarks); in ``.md``: ``<!-- elbocheck ... -->`` or a fenced block ```` ```elbocheck ````. One line is
enough for most models: ``elbocheck model NAME: FACTORS``, the generative (``p``) and inference (``q``) factors in
compact notation (``p_theta(x|z)``; a subscript marks a factor parametric, which matters for "up to a constant").
The variables that ``q`` factors generate are latent, the others observed; a variable that conditions a ``p`` factor
but has none is an input (the class ``c``); the data distribution ``p_D`` covers the observed variables. Further
clauses, after ``;`` or on the following lines: ``coefficients: beta >= 1, lambda > 0, alpha real, 0 <= g <= 1``,
``vectors: z = 3`` (with ``prod_j p(z_j)``), ``aux: r(y|z), q_delta(y|z)``, ``data: p_D(x)``,
``observed: x, y``, ``latent: z``, ``assume STEPS: q(z_l,z_u|x) = q(z_l|x) q(z_u|x)`` (without STEPS: every
step; or a factor equal to a density, ``q(Z) = p(Z|X, theta^{old})``, substituted in those steps), ``step STEPS:
\geq`` (or ``=``, ``\leq``, ``=const``, ``none``), ``title: ...``; for the papers' notation (issue 10) ``vectors: z
= J`` (a symbolic size), ``samples: h_i ~ q(h|x), i = 1..k``, ``discrete: y``, ``datapoints: x^{(i)}, i = 1..N``,
``data: p(x)`` (the name the text gives p_D), ``measures STEPS: E = q(z)``, ``let: w_i = p(x,h_i)/q(h_i|x)``,
``parameters: theta``, ``letters: p = q``, ``capitals: X, Z``, factors with letters of their own (``p: m(z)
d(x|z)``); ``uniform:``, ``deterministic:``, ``discrete: z = 1..K`` and factors over prefixes ``z_{<l}`` are
errors that say why (:mod:`.header`). STEPS are ``(3)->(4)`` (the
step from the line tagged (3) to the line tagged (4)), ``(4)`` (every step ending on line (4)), ``line 12`` (by file
line), comma-separated, or ``all``. Several headers make several derivations, each with the math up to the next
header; a comment ``elbocheck end`` stops reading math, ``elbocheck skip`` skips the next block; math before the
first header is ignored.

LINES. Display math (``$$...$$``, ``\[...\]``, ``equation``, ``align``, ``gather``, ``multline``, with ``aligned``
inside; inline ``$...$`` is prose) is split into rows at ``\\`` and joined into logical lines
(:mod:`.document`): a row that starts with a relation starts a line; a row that starts with ``+``/``-`` in the
same block, or follows a row ending in a relation or an operator (also across blocks), continues the line. A line is

* ``REL e1 [REL e2 ...]`` (``&= ...``): the chain goes on: the last expression of the line before REL e1;
* ``e0 REL e1 [...]`` (``\log p(x) \geq ...``): a statement; it starts a new chain;
* ``NAME = e1 [...]``, NAME being ``\mathcal{L}``, ``\mathcal{J}``, ``J``, ``L``... with an optional subscript and
  arguments (``\mathcal{L}_{\theta,\phi}(\mathbf{x})``, ``J_{\text{InfoVAE}}``): a definition. After a chain that
  began with an expression it is related to the line before by ``=`` (change it in the header: ``step (6)->(7):
  \geq``, or ``none``); after a chain that began with a definition, and with ``:=``/``\coloneqq``/``\equiv``,
  it starts a new chain. A name defined before is checked against its earlier definition (``=``). A name at the end
  of a line (``... = \mathcal{L}(x)``) names the expression before it. Defined names can be used later;
* ``e0`` alone: the start of a chain; after another line it is an error ("missing relation") unless the header
  gives the relation into it.

RELATIONS: ``=`` (also ``:=``, ``\coloneqq``, ``\equiv``, ``\overset{(a)}{=}`` with any label), ``\geq``/``\ge``,
``\leq``/``\le``, and EQUAL UP TO A CONSTANT (the difference does not depend on the parameters):
``\overset{c}{=}``, ``\stackrel{c}{=}``, ``=_c``, or a term ``+ \text{const}`` (also ``\text{constant}``,
``\mathrm{const}``), or a term ``\underbrace{- ...}_{\text{const}}`` (the braced term is claimed to be a constant
and dropped). ``\approx``, ``\propto``, ``\sim``, ``<``, ``>`` cannot be checked (an error). Tags: ``\tag{4}`` or
``\quad (4)`` at the end of a row or after ``\end{aligned}``; steps are labelled ``(3) -> (4)``, or by file line.

NOTATION: densities ``p``, ``q``, ``p_D`` (``p_{\mathcal{D}}``, ``p_{\text{data}}``) and the auxiliary densities
the header declares, with parameter subscripts and arguments ``(targets | given)`` (``|`` or ``\mid``); a density
name is never a product (``p(x)`` is not ``p * x``), an undeclared one (``s(x)``, ``g(z)``) is an error. Variables
by name: ``\mathbf{z}_l``, ``\boldsymbol{z}_{l}`` and ``z_l`` are ``z_l``; ``x^{(i)}`` is ``x``. ``\log``/``\ln``
(of the juxtaposed product after it), ``\frac``, powers ``^{...}`` of densities with coefficient exponents,
``\cdot``; ``\mathbb{E}_{q(z|x)}[...]`` (also ``\mathbb E``; brackets optional; the measure is a density, a product
of densities, or ``\epsilon \sim p(\epsilon)``; nested expectations are a product measure); ``\int``/``\iint``
against a density with differentials ``d\mathbf{z}``, ``\mathrm{d}z`` (an expectation;
``\int q(z_u|x) \int q(z_l|x) f \, dz_l dz_u`` nests); ``D_{KL}(q || p)``, ``D_{\text{KL}}``, ``\mathrm{KL}``,
``KL[q \| p]``, with ``||``, ``\|``, ``\parallel``; ``I(x; z)``, ``I_\phi(x;z)``, ``I_q`` (the inference joint) or
``I_\theta``, ``I_p`` (the generative joint), ``I(x; z | y)``; ``H(q(z|x))``; ``TC(q(z))``; Greek coefficients
declared in the header, and numbers. ``\left``/``\right``, ``\quad``, ``\,``, ``\displaystyle``, ``\nonumber`` and
``\label`` are ignored; ``\max``/``\min``, ``\nabla`` are errors. The papers' notation: ``\sum``/``\prod`` over
the components of a vector, over importance samples (``\mathbb{E}_{h_1, \ldots, h_k \sim q(h|x)}``), over the data
points (``\frac{1}{N}\sum_{n=1}^{N}``: an expectation under p_D, ``\log N`` its entropy) and over the values of a
discrete variable (``\sum_y q(y|x) f``: an expectation; ``\sum_h p(x,h)``: a marginal); integrals with the
differentials first or not against a density of the integrated variables; steps between positive values compared as
logs; ``\mathbb{H}``, ``\mathcal{H}``, ``\mathbb{I}``, ``I(Z, Y)``, ``KL[p, q]``, Renyi's ``D_\alpha``,
``\lim_{\alpha \to 1}``; names mid-line, negated, as words (``\text{ELBO}``), with a symbolic index (a family);
``\implies`` (two statements). What a reading implies for the verdict is in :mod:`.lowering`.

ERRORS are :class:`~.document.LatexError`: ``FILE:LINE:COLUMN: error: ... expected ...``. A file that cannot
be read (missing, not UTF-8, no header, a malformed header, no display math) is *fatal*; a problem in the math
stops the reading there, and the steps before it are still checked. In the header, a coefficient that is not a
Greek letter, one declared twice, an empty range (``2 <= beta <= 1``) and a vector over 4096 components are fatal;
a declared coefficient that the math never writes is an error after the steps are read.

LIMITS (:mod:`.limits`): a file up to 2 MB; a logical line up to 10000 characters and 200 terms and operators;
braces, brackets and parentheses nested up to 50 deep; numbers up to 15 digits, in exponents up to 3, and no
exponent inside an exponent. Beyond them the error names the limit at its place. Each step is checked under a time
limit (``elbocheck check --timeout``, default 5 s) after which it is undecided.
"""

from .document import LatexError
from .steps import (DEFAULT_STEP_SECONDS, CheckedFile, ParsedFile, check_file, check_parsed, iter_check, labelled,
                    parse_file, parse_text, place)

__all__ = ["LatexError", "ParsedFile", "CheckedFile", "parse_file", "parse_text", "check_file", "check_parsed",
           "iter_check", "labelled", "place", "DEFAULT_STEP_SECONDS"]
