r"""Mutations of derivation files, for testing that ``elbocheck check`` ends every input in verdicts or a clear error.

A mutation deletes, replaces, duplicates or inserts a piece of text at an offset, mostly inside the model header or
the display math (where the reader works), the inserted pieces drawn from :data:`VOCABULARY`: LaTeX that the reader
supports, half-written constructs, unsupported commands, header clauses (good, bad and empty), and inputs built to be
expensive (deep nesting, long sums, towers of exponents, large vectors). :func:`random_mutations` draws them from a
seeded :class:`random.Random` (``benchmarks/check_reliability.py``); :func:`mutations` is the same space as a
Hypothesis strategy (the tests; needs ``hypothesis``).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

KINDS = ("delete", "replace", "insert", "duplicate")

VOCABULARY = (
    # pieces of the supported notation
    r"\log ", r"\log p(x)", r"p(x)", r"p_\theta(x|z)", r"q_\phi(z|x)", r"q(z)", r"p_D(x)", r"p_{\mathcal{D}}(x)",
    r"\frac{", r"}{", r"\frac{p(x,z)}{q(z|x)}", r"\mathbb{E}_{q_\phi(z|x)}", r"\mathbb{E}_{q(z|x)}\left[",
    r"\right]", r"\left(", r"\right)", r"D_{KL}(", r"D_{\text{KL}}(q(z|x) \| p(z))", r"||", r"\parallel",
    r"I(x; z)", r"I_\phi(x;z)", r"H(q(z|x))", r"TC(q(z))", r"\int q(z|x)", r"dz", r"\, d\mathbf{z}",
    "=", r"\geq", r"\leq", r"\overset{c}{=}", r"=_c", r" + \text{const}", r"\underbrace{- \log p(x)}_{\text{const}}",
    r"\quad (9)", r"\tag{9}", r"\\", "&", "&=", "+", "-", r"\cdot", r"^{2}", r"^{\beta}", r"\beta", r"\lambda",
    r"\mathbf{z}_l", r"x^{(i)}", r"\mathcal{L}(x) = ", r"\mathcal{L}(x)", ":=",
    # broken or unsupported
    "{", "}", "(", ")", "[", "]", "$$", "$", r"\[", r"\]", r"\begin{align}", r"\end{align}", r"\begin{aligned}",
    r"\foo", r"\sum_j", r"\prod_j", r"\max_\theta", r"\approx", "<", r"s(x)", r"g(z)", "β", "∑", "\x00", "\t", "\n",
    "\n\n", "%", r"\%", "_", "^", "^^", r"\left", r"\right", r"\frac", r"\mathbb{E}", r"\mathbb{E}_{", r"D_{KL}",
    r"\text{", r"\overset{", r"q_{;\theta}(z|x)", r"q_{\phi\phi}(z|x)", "p(x|z|y)", "p()", "p(,)", "1e308", "0.5",
    # header clauses
    "\n% elbocheck model m: p(z) p_theta(x|z) q_phi(z|x)\n", "; coefficients: beta >= 1", "; coefficients: foo > 0",
    "; coefficients: 2 <= beta <= 1", "; vectors: z = 3", "; vectors: z = 1000", "; aux: r(y|z)",
    "; assume (1)->(2): q(z|x) = q(z) q(x)", "; step (1)->(2): \\geq", "; step (99): =", "; title: t", "; colour: red",
    "\n% elbocheck end\n", "\n% elbocheck skip\n", "<!-- elbocheck end -->",
    "\n<!-- elbocheck model m: p(z) p_theta(x|z) q_phi(z|x) -->\n", "```elbocheck\n",
    # expensive on purpose
    r"\frac{" * 60 + "p(x)" + "}{p(z)}" * 60, "(" * 80 + "p(x)" + ")" * 80, " + ".join([r"\log p(x)"] * 300),
    r"p(x)^{9^{9^{9}}}", r"p(x)^{99999}", "1" * 40, r"\mathbb{E}_{q(z|x)}[" * 40 + r"\log p(x)" + "]" * 40,
)


@dataclass(frozen=True)
class Mutation:
    kind: str  # one of KINDS
    position: float  # where, as a fraction of the places the mutation may hit
    length: int  # characters deleted, replaced or duplicated
    token: str = ""  # text inserted or put in place
    focused: bool = True  # only header and math (True), or anywhere in the file


def _places(text: str) -> list[int]:
    """Offsets inside model headers and display math (where a mutation matters most)."""
    places: list[int] = []
    patterns = (r"\$\$.*?\$\$", r"\\\[.*?\\\]", r"\\begin\{(align|equation)\*?\}.*?\\end\{(align|equation)\*?\}",
                r"^%.*$", r"<!--.*?-->", r"^```elbocheck.*?^```")
    for pattern in patterns:
        for m in re.finditer(pattern, text, flags=re.S | re.M):
            places.extend(range(m.start(), m.end() + 1))
    return sorted(set(places)) or list(range(len(text) + 1))


def apply(text: str, mutations: list[Mutation]) -> str:
    """The text after each mutation in turn."""
    for mutation in mutations:
        places = _places(text) if mutation.focused else list(range(len(text) + 1))
        at = places[min(int(mutation.position * len(places)), len(places) - 1)]
        end = min(at + mutation.length, len(text))
        if mutation.kind == "delete":
            text = text[:at] + text[end:]
        elif mutation.kind == "replace":
            text = text[:at] + mutation.token + text[end:]
        elif mutation.kind == "insert":
            text = text[:at] + mutation.token + text[at:]
        else:  # duplicate
            text = text[:end] + text[at:end] + text[end:]
    return text


def random_mutations(rng: random.Random, most: int = 3) -> list[Mutation]:
    """1 to ``most`` mutations drawn from ``rng`` (the space of :func:`mutations`)."""
    return [Mutation(rng.choice(KINDS), rng.random(), rng.choice((1, 1, 2, 5, 20, 200)), rng.choice(VOCABULARY),
                     rng.random() < 0.8)
            for _ in range(rng.randint(1, most))]


def mutations(most: int = 3):
    """A Hypothesis strategy: lists of 1 to ``most`` mutations."""
    from hypothesis import strategies as st

    one = st.builds(Mutation, st.sampled_from(KINDS), st.floats(0.0, 1.0, exclude_max=True),
                    st.sampled_from((1, 1, 2, 5, 20, 200)), st.sampled_from(VOCABULARY),
                    st.booleans())
    return st.lists(one, min_size=1, max_size=most)
