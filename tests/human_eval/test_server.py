import csv
import io

from human_eval.ingest import ingest
from human_eval.server import create_app
from tests.conftest import local_client


def test_answers_persist_resume_and_raters_do_not_clash(caption_batch, answer, tmp_path):
    out, manifest = caption_batch
    client = local_client(create_app(out))
    first = client.get("/api/next", params={"rater": "ann"}).json()
    assert first["done"] == 0 and first["total"] == len(manifest["pairs"])
    pid = first["pair"]["pair_id"]
    assert client.post("/api/answer", json={"rater": "ann", "pair_id": pid, "choice": "left", "reasons": [0, 2]}).json() == {"stored": True}
    assert client.post("/api/answer", json={"rater": "ann", "pair_id": pid, "choice": "right"}).json() == {"stored": False}
    # a restarted server (new app, same folder) resumes ann after her first pair; bob starts fresh
    restarted = local_client(create_app(out))
    resumed = restarted.get("/api/next", params={"rater": "ann"}).json()
    assert resumed["done"] == 1 and resumed["pair"]["pair_id"] != pid
    assert restarted.get("/api/next", params={"rater": "bob"}).json()["pair"]["pair_id"] == pid
    restarted.post("/api/answer", json={"rater": "bob", "pair_id": pid, "choice": "right"})
    rows = list(csv.DictReader(io.StringIO(restarted.get("/api/export").text)))
    assert [(r["WorkerId"], r["Answer.choice"]) for r in rows] == [("ann", "left"), ("bob", "right")]
    assert rows[0]["Answer.reason_0"] == "on" and rows[0]["Answer.reason_1"] == ""
    (tmp_path / "export.csv").write_text(restarted.get("/api/export").text)
    assert ingest(tmp_path / "export.csv", out / "key.json").problems == []


def test_bad_answers_are_refused(caption_batch):
    out, _ = caption_batch
    client = local_client(create_app(out))
    assert client.post("/api/answer", json={"rater": "ann", "pair_id": "nope", "choice": "left"}).status_code == 404
    pid = client.get("/api/next", params={"rater": "ann"}).json()["pair"]["pair_id"]
    assert client.post("/api/answer", json={"rater": "ann", "pair_id": pid, "choice": "up"}).status_code == 400
    assert client.get("/api/next", params={"rater": "<script>"}).status_code == 400


def test_media_only_from_the_batch_upload_folder(caption_batch):
    out, _ = caption_batch
    client = local_client(create_app(out))
    pair = client.get("/api/next", params={"rater": "ann"}).json()["pair"]
    assert pair["context_url"].startswith("/media/")
    assert client.get(pair["context_url"]).status_code == 200
    for probe in ["/media/..%2Fkey.json", "/media/%2E%2E%2Fkey.json", "/media/../key.json", "/media/key.json",
                  "/media/..%2F..%2Fetc%2Fpasswd"]:
        response = client.get(probe)
        assert response.status_code == 404, probe
        assert "pairs" not in response.text
