"""Follow-up questions in a chat: does retrieval find the right section with and without the conversation?

    .venv/bin/python benchmarks/chat_followups.py

Multi-turn cases over the sample handbook (samples/docs), each a first question and a follow-up that only makes
sense after it ("And for meals?"). The follow-up is searched three ways on the real embedded stack (MiniLM,
hybrid search on qdrant-edge): as typed (what `ragcli chat` did before), with `Conversation.retrieval_query`
(the follow-up plus the previous turn's content words and names), and as a standalone rewrite written by hand (the
ceiling). A case counts when the answer's words reach the packed prompt (`--no-answer`: no LLM). Writes benchmarks/results/chat_followups.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# (first question, first answer, follow-up, standalone rewrite, the answer's words that must reach the prompt)
CASES = [
    (
        "What is the hotel limit in Paris?",
        "The limit is 250 euros per night in Paris [1].",
        "And for meals?",
        "What is the meal limit when travelling?",
        "60 euros",
    ),
    (
        "How long do I have to submit expenses?",
        "Submit expense reports within 30 days of returning [1].",
        "When is it paid?",
        "When are expense reimbursements paid?",
        "next monthly salary",
    ),
    (
        "How long must passwords be?",
        "Passwords must be at least 16 characters long [1].",
        "What about the laptop?",
        "How are laptops secured?",
        "full-disk encryption",
    ),
    (
        "What are the core hours?",
        "Core hours are 10:00 to 16:00 in your local time zone [1].",
        "How many days of holiday do I get on top of that?",
        "How many days of paid holiday does an employee get?",
        "28 days",
    ),
    (
        "When is the release branch cut?",
        "The release branch is cut on Monday at 12:00 UTC [1].",
        "And when is it rolled back?",
        "When is a release rolled back?",
        "rolls back",
    ),
    (
        "Who do I report a phishing email to?",
        "Report it to security@northwind.example within one hour [1].",
        "How fast do they answer?",
        "How fast does the on-call security engineer answer an incident report?",
        "15 minutes",
    ),
]


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="ragcli-followups-"))
    os.environ["RAGCLI_HOME"] = str(home)
    from ragcli.resources import offline_env

    offline_env()
    from ragcli.config import load_config
    from ragcli.generation.conversation import Conversation
    from ragcli.pipelines.ingest_pipeline import ingest
    from ragcli.pipelines.query_pipeline import QueryOptions, answer
    from ragcli.pipelines.stages import Stages

    stages = Stages.from_config(load_config("local", overrides={"collection": "followups"}))
    data = Path(os.environ.get("RAGCLI_DATA") or ROOT.parent / "shared" / "data")
    distractors = (
        data / "docs_corpus" / "markdown_mkdocs" / "docs"
    )  # 19 real pages, so a vague query can miss
    ingest([ROOT / "samples" / "docs", *([distractors] if distractors.is_dir() else [])], stages)
    rows = []
    wins = {"as typed": 0, "conversation": 0, "standalone": 0}
    for first, reply, follow, standalone, gold in CASES:
        conv = Conversation(stages.llm.count_tokens)
        conv.add(first, reply)
        queries = {"as typed": follow, "conversation": conv.retrieval_query(follow), "standalone": standalone}
        got = {}
        for kind, q in queries.items():
            ans = answer(follow, stages, QueryOptions(no_answer=True, retrieval_query=q))
            hit = gold.lower() in ans.prompt[-1].content.lower()
            wins[kind] += hit
            got[kind] = f"{'yes' if hit else 'no'} ({ans.prompt_tokens.get('context', 0)} tok)"
        rows.append(
            f"| {first} / {follow} | {gold} | {got['as typed']} | {got['conversation']} | {got['standalone']} |"
        )
    stages.close()
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    n = len(CASES)
    text = "\n".join(
        [
            "# Follow-up questions in a chat: retrieval with and without the conversation",
            "",
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {commit.stdout.strip()}, preset `local` "
            "(MiniLM, hybrid search, qdrant-edge) over samples/docs plus the 19 MkDocs pages of docs_corpus as "
            "distractors. Command: "
            "`.venv/bin/python benchmarks/chat_followups.py`.",
            "",
            "A case counts when the answer's words reach the packed prompt (context tokens in brackets). The cases are "
            "hand-written over the sample "
            "handbook (its own documents, not a public set), six of them: a few real multi-turn cases, not a "
            "benchmark.",
            "",
            "| first question / follow-up | answer words | as typed | conversation query | standalone (by hand) |",
            "| --- | --- | --- | --- | --- |",
            *rows,
            f"| **answer in prompt** | | **{wins['as typed']}/{n}** | **{wins['conversation']}/{n}** | "
            f"**{wins['standalone']}/{n}** |",
            "",
        ]
    )
    out = ROOT / "benchmarks" / "results" / "chat_followups.md"
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
