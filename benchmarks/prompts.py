"""Fixed prompt sets for the engine benchmarks: the same text on every engine and every run."""

from __future__ import annotations

from typing import Any

SHORT_CHAT = [
    "What is the capital of Portugal?",
    "Give me three tips for a good night's sleep.",
    "Translate 'where is the train station' into Spanish and German.",
    "What does HTTP status 429 mean?",
    "Suggest a name for a small bakery that sells sourdough.",
    "Summarise the plot of Romeo and Juliet in two sentences.",
]

CODE = [
    "Write a Python function that returns the n-th Fibonacci number iteratively, with a docstring.",
    "Write a SQL query that returns the ten customers with the highest total order value.",
    "Explain what this shell line does: find . -name '*.log' -mtime +7 -delete",
    "Write a TypeScript type guard that checks whether a value is a non-empty string array.",
]

# A made-up but realistic internal document, long enough (~1,600 words) to make prefill matter.
_POLICY_SECTIONS = [
    ("Scope", "This policy covers every laptop, phone and server that stores customer data."),
    ("Passwords", "Passwords have at least fourteen characters and are kept in the team vault."),
    ("Updates", "Security updates are installed within seven days; critical ones within two."),
    ("Backups", "Backups run nightly, are encrypted, and one copy is kept off site each week."),
    ("Incidents", "Suspected incidents are reported to the on-call engineer within one hour."),
    ("Access", "Access is granted per role and reviewed every quarter by the team lead."),
    ("Travel", "Devices taken abroad are wiped of customer data unless a manager approves."),
    ("Vendors", "Vendors that process customer data sign the data processing agreement first."),
]
RAG_SYSTEM = (
    "You are the company's assistant. Answer only from the documents provided. If the documents "
    "do not contain the answer, say so. Quote the section name you used."
)


def rag_document(repeats: int = 12) -> str:
    """The long document (deterministic): each section expanded with numbered clauses."""
    parts = []
    for title, rule in _POLICY_SECTIONS:
        clauses = [f"{title} clause {i + 1}: {rule}" for i in range(repeats)]
        parts.append(f"## {title}\n" + "\n".join(clauses))
    return "\n\n".join(parts)


RAG_QUESTIONS = [
    "How quickly must critical security updates be installed?",
    "Who reviews access rights, and how often?",
    "What happens to customer data on a laptop taken abroad?",
    "How long may an incident go unreported?",
]


def prompt_set(name: str) -> list[list[dict[str, Any]]]:
    """Chat ``messages`` lists for a named set: short_chat, long_rag or code."""
    if name == "short_chat":
        return [[{"role": "user", "content": q}] for q in SHORT_CHAT]
    if name == "code":
        return [[{"role": "user", "content": q}] for q in CODE]
    if name == "long_rag":
        document = rag_document()
        return [
            [
                {"role": "system", "content": RAG_SYSTEM},
                {"role": "user", "content": f"Documents:\n{document}\n\nQuestion: {q}"},
            ]
            for q in RAG_QUESTIONS
        ]
    raise ValueError(f"unknown prompt set '{name}' (short_chat, long_rag, code)")


PROMPT_SETS = ("short_chat", "long_rag", "code")
