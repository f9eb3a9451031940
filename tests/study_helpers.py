"""Helpers for the human-study tests: judged-sample fixtures and an annotator that talks to a
real Potato server over HTTP exactly as the annotation page does (cookies, the same endpoints
and JSON bodies as Potato's annotation.js)."""

from __future__ import annotations

import http.cookiejar
import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

HTTP_TIMEOUT_S = 60  # per request: generous, Potato on a busy machine can be slow to answer


def judged_sample(doc_id: int, model: str, status: str = "scored",
                  score: float | None = 0.0, **extra: Any) -> dict[str, Any]:
    """One samples.jsonl record in the docs/formats.md shape."""
    return {
        "doc_id": doc_id,
        "task": "eli5",
        "model": model,
        "query": f"Question {doc_id}: why is the sky blue?",
        "response": f"Answer {doc_id} from {model}: Rayleigh scattering of sunlight.",
        "judgments": {
            "factuality": {
                "status": status,
                "score": score if status == "scored" else None,
                "reason": "The response ...",
                "raw": f"Reason: ...\nScore: {score}",
                "judge_model": "gpt-4-0613",
                "attempts": 1,
            }
        },
        **extra,
    }


def write_samples(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


class PotatoAnnotator:
    """One annotator's browser session against a Potato server."""

    def __init__(self, base_url: str, name: str, password: str = "correct-horse") -> None:
        self.base_url = base_url
        self.name = name
        self.password = password
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def _open(self, path: str, data: bytes | None = None,
              headers: dict[str, str] | None = None) -> tuple[int, str, str]:
        request = urllib.request.Request(self.base_url + path, data=data, headers=headers or {})
        try:
            with self._opener.open(request, timeout=HTTP_TIMEOUT_S) as response:
                return response.status, response.geturl(), response.read().decode("utf-8")
        except urllib.error.HTTPError as error:
            return error.code, error.geturl(), error.read().decode("utf-8", errors="replace")

    def _form(self, path: str, fields: dict[str, str]) -> tuple[int, str, str]:
        return self._open(path, urllib.parse.urlencode(fields).encode(),
                          {"Content-Type": "application/x-www-form-urlencoded"})

    def _json(self, path: str, body: dict[str, Any]) -> tuple[int, str, str]:
        return self._open(path, json.dumps(body).encode(), {"Content-Type": "application/json"})

    def register(self) -> str:
        """The home page's register form; returns the page it lands on (the annotation page)."""
        status, _, page = self._form("/register", {"email": self.name, "pass": self.password})
        assert status == 200, (status, page[:300])
        return page

    def login(self) -> str:
        status, _, page = self._form("/auth", {"email": self.name, "pass": self.password})
        assert status == 200, (status, page[:300])
        return page

    def current_item(self) -> dict[str, Any] | None:
        """What the page shows now (`/api/current_instance`), or None when the annotator is done."""
        status, _, body = self._open("/api/current_instance")
        if status != 200:
            return None
        return json.loads(body)  # type: ignore[no-any-return]

    def answer(self, item_id: str, answers: dict[str, str]) -> None:
        """Click one label per radio question (saved by /updateinstance as the page does)."""
        annotations = {f"{question}:{label}": label for question, label in answers.items()}
        status, _, body = self._json("/updateinstance",
                                     {"instance_id": item_id, "annotations": annotations, "span_annotations": []})
        assert status == 200 and json.loads(body).get("status") == "success", (status, body[:300])

    def next_item(self, item_id: str) -> tuple[int, str]:
        """The Next button: POST /annotate {action: next_instance}."""
        status, url, _ = self._json("/annotate", {"action": "next_instance", "instance_id": item_id})
        return status, url

    def annotate_all(self, choose: Any, limit: int | None = None) -> list[str]:
        """Answer items in the order Potato serves them; `choose(item)` gives the answers.

        Stops after `limit` items (an annotator who gives up) or when Potato has no more.
        """
        done: list[str] = []
        while limit is None or len(done) < limit:
            item = self.current_item()
            if item is None or item["instance_id"] in done:
                break
            self.answer(item["instance_id"], choose(item))
            done.append(item["instance_id"])
            self.next_item(item["instance_id"])
        return done


def write_potato_state(project: Path, annotator: str, answers: dict[str, tuple[str, str]],
                       assigned: list[str] | None = None) -> Path:
    """An annotator's `annotation_output/<annotator>/user_state.json` in the shape Potato 2.x
    writes it (checked against a real server by test_study_potato.py / test_study_browser.py):
    item -> [[{"schema", "name"}, value], ...] for the count and yes/no questions."""
    labels = {
        item_id: [[{"schema": "num_errors", "name": count}, count], [{"schema": "any_error", "name": yes_no}, yes_no]]
        for item_id, (count, yes_no) in answers.items()
    }
    state = {
        "user_id": annotator,
        "instance_id_ordering": list(assigned if assigned is not None else answers),
        "current_instance_index": 0,
        "current_phase_and_page": ["annotation", "annotation"],
        "instance_id_to_label_to_value": labels,
        "instance_id_to_span_to_value": {},
    }
    path = project / "annotation_output" / annotator / "user_state.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state), encoding="utf-8")
    return path


def item_ids_by_doc(project: Path) -> dict[int, str]:
    """doc_id -> item id, from the project's manifest."""
    manifest = json.loads((project / "study.json").read_text())
    return {item["source"]["doc_id"]: item["item_id"] for item in manifest["items"]}


def cli_error(capsys: Any, argv: list[str]) -> str:
    """Run the CLI expecting a user error; returns the one-line message."""
    from eft_eval.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("eft-eval: error: ") and len(err.splitlines()) == 1, err
    return err


def prepare_project(tmp_path: Path, n: int = 6) -> Path:
    """`human-study prepare` over n judged samples (alternating scores 0 and 1) into tmp_path/study."""
    from eft_eval.cli import main

    samples = write_samples(tmp_path / "samples.jsonl", [judged_sample(d, "m", score=float(d % 2)) for d in range(n)])
    project = tmp_path / "study"
    assert main(["human-study", "prepare", "--samples", str(samples), "--n", str(n), "--out", str(project)]) == 0
    return project
