import json
import os
import stat

import pytest

from appliance.state import State, StateStore


def test_state_survives_a_restart(tmp_path):
    store = StateStore(tmp_path)
    store.save(State(reps=7, total=107, resets=2))
    again = StateStore(tmp_path).load()
    assert (again.reps, again.total, again.resets) == (7, 107, 2)


def test_fresh_directory_starts_at_zero(tmp_path):
    assert StateStore(tmp_path / "new").load() == State()


def test_file_is_private_and_no_temp_file_is_left(tmp_path):
    store = StateStore(tmp_path)
    store.save(State(reps=1, total=1))
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_damaged_file_is_kept_aside(tmp_path):
    (tmp_path / "state.json").write_text('{"reps": 3, "tot')
    state = StateStore(tmp_path).load()
    assert state == State()
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("state.json.corrupt")]
    assert len(kept) == 1 and kept[0].read_text() == '{"reps": 3, "tot'


def test_negative_counts_are_refused(tmp_path):
    (tmp_path / "state.json").write_text(json.dumps({"reps": -1, "total": 5}))
    assert StateStore(tmp_path).load() == State()


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_directory_keeps_count_in_memory(tmp_path):
    store = StateStore(tmp_path)
    store.save(State(reps=1, total=1))
    tmp_path.chmod(0o500)
    try:
        assert store.save(State(reps=2, total=2)) is False
        assert store.pending and "cannot write state" in store.error
    finally:
        tmp_path.chmod(0o700)
    assert store.save(State(reps=3, total=3)) is True
    assert not store.pending and store.error is None
    assert StateStore(tmp_path).load().reps == 3


def test_unwritable_target_keeps_count_in_memory(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    store = StateStore(blocker / "state")
    assert store.save(State(reps=2, total=2)) is False
    assert store.pending and str(blocker) in store.error
    blocker.unlink()
    assert store.save(State(reps=3, total=3)) is True
    assert StateStore(blocker / "state").load().reps == 3
