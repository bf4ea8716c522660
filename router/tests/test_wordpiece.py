"""The scorer's tokenizer gives all-MiniLM-L6-v2's own token ids (the token weights are indexed
by them). Expected ids from Hugging Face ``tokenizers`` 0.23.3 with the model's tokenizer.json
(``add_special_tokens=False``)."""

from __future__ import annotations

import pytest

from adaptive_router import ComplexityScorer
from adaptive_router.wordpiece import basic_split

tokenizer = ComplexityScorer().model.tokenizer


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        (
            "Démontre étape par étape: x^2 <= 3!",
            [5698, 7913, 27859, 5051, 11968, 27859, 5051, 1024, 1060, 1034, 1016, 1026, 1027,
             1017, 999],
        ),
        ("naïve café — ok…", [15743, 7668, 1517, 7929, 1529]),
        ("数学の問題", [100, 1817, 1671, 100, 100]),
        (
            "Kubernetes pods, CrashLoopBackOff",
            [13970, 5677, 7159, 2229, 26723, 1010, 5823, 4135, 7361, 5963, 7245],
        ),
    ],
)  # fmt: skip
def test_ids_match_the_model_s_own_tokenizer(text: str, ids: list[int]) -> None:
    assert tokenizer.ids(text) == ids


def test_control_characters_and_odd_input_never_raise() -> None:
    assert basic_split("a\u200bb\x00c\ufffd") == ["abc"]
    assert tokenizer.ids("") == []
    assert tokenizer.ids("x" * 500) == [tokenizer.unk_id]  # a "word" over 100 characters
    assert tokenizer.ids("\udcff lone surrogate") != []
