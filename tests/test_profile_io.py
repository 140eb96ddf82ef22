import json

import pandas as pd
import pytest

from greenbench import profile as prof


def make_profile(n=2):
    p = prof.Profile(
        greenbench_version="0.1.0", created_utc="2026-01-01T00:00:00Z", updated_utc="x",
        ladder={"name": "t"}, settings={"protocol": {"quick": True}}, provenance={"host": "h"},
    )
    for b in range(1, n + 1):
        p.records.append(prof.Record(
            ladder="t", model="m", params=10, batch_size=b, precision="fp32", device="cpu",
            accuracy=0.5, accuracy_ci95=(0.4, 0.6), accuracy_n=100, latency_p50_ms=1.0,
            energy_j_per_item=0.1 * b, energy_j_per_item_ci95=(0.09 * b, 0.11 * b),
            energy_method="estimate", repeats=3, samples={"energy_j_per_item": [0.1, 0.1, 0.1]},
            flags=["quick"],
        ))
    p.records.append(prof.Record(ladder="t", model="m", batch_size=999, precision="fp32",
                                 device="cpu", status="failed", error="OutOfMemoryError: x"))
    return p


def test_round_trip_keeps_every_field(tmp_path):
    p = make_profile()
    path = tmp_path / "p.json"
    prof.save(p, path)
    doc = json.loads(path.read_text())
    assert doc["schema"] == prof.SCHEMA and doc["schema_version"] == prof.SCHEMA_VERSION
    q = prof.load(path)
    assert q.records == p.records
    assert q.finished_keys() == p.finished_keys()
    assert len(q.ok_records()) == 2
    failed = q.records[-1]
    assert failed.energy_j_per_item is None and failed.energy_method == "unavailable"


def test_atomic_write_keeps_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "p.json"
    prof.save(make_profile(1), path)
    before = path.read_text()

    def boom(*a, **k):
        raise OSError("disk full")

    from greenbench.profile import io as profile_io

    monkeypatch.setattr(profile_io.os, "replace", boom)
    with pytest.raises(prof.WriteError, match=r"p\.json: cannot write: disk full"):
        prof.save(make_profile(2), path)
    assert path.read_text() == before
    assert [f.name for f in tmp_path.iterdir()] == ["p.json"]  # no temp file left behind


@pytest.mark.parametrize(
    "content,expected",
    [
        ("not json", "not JSON"),
        ('{"a": 1}', "not a greenbench profile"),
        ('{"schema": "greenbench/profile", "schema_version": 99}', "schema version 99"),
        ('{"schema": "greenbench/profile", "schema_version": 1}', "invalid profile"),
    ],
)
def test_bad_profiles_give_one_line(tmp_path, content, expected):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(prof.ProfileError, match=expected) as e:
        prof.load(path)
    assert "\n" not in str(e.value)


def test_missing_profile(tmp_path):
    with pytest.raises(prof.ProfileError, match="cannot read"):
        prof.load(tmp_path / "nope.json")


def test_csv_export_is_long_form(tmp_path):
    path = tmp_path / "p.csv"
    prof.export_csv(make_profile(), path)
    df = pd.read_csv(path)
    assert list(df.columns) == prof.CSV_COLUMNS
    assert len(df) == 3
    assert df.loc[1, "energy_j_per_item"] == pytest.approx(0.2)
    assert df.loc[1, "energy_j_per_item_ci95_high"] == pytest.approx(0.22)
    assert df.loc[2, "status"] == "failed" and pd.isna(df.loc[2, "energy_j_per_item"])


def test_unknown_keys_in_a_section_load_and_are_written_back(tmp_path):
    """The sections beside the records were free-form once: a key from a newer greenbench (or a
    hand edit) must neither fail the file nor be lost on the next save."""
    import json

    path = tmp_path / "p.json"
    prof.save(make_profile(1), path)
    doc = json.loads(path.read_text())
    doc["provenance"]["gpu_firmware"] = "96.00.af"
    doc["settings"]["future_option"] = 3
    path.write_text(json.dumps(doc))
    loaded = prof.load(path)
    prof.save(loaded, path)
    again = json.loads(path.read_text())
    assert again["provenance"]["gpu_firmware"] == "96.00.af"
    assert again["settings"]["future_option"] == 3


def test_records_json_writes_the_profile_byte_for_byte_as_to_json_across_saves(tmp_path):
    """The fleet driver's save keeps each record's JSON between saves: the file must still be
    exactly what Profile.to_json writes, as records are appended, replaced and dropped."""
    import synthetic_profiles

    p = synthetic_profiles.make_profile(3)
    every = list(p.records)
    cache = prof.RecordsJson()
    path = tmp_path / "p.json"
    for n in (0, 1, len(every) // 2, len(every)):
        p.records = every[:n]
        prof.save(p, path, cache)
        assert path.read_text() == p.to_json()
        assert len(prof.load(path).records) == n
    p.records = [every[0].model_copy(update={"model": "changed"}), *every[1:]]  # a new record object
    prof.save(p, path, cache)
    assert path.read_text() == p.to_json() and prof.load(path).records[0].model == "changed"
