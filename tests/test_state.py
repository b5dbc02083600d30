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


def test_deeply_nested_brackets_are_kept_aside_not_a_traceback(tmp_path, caplog):
    """json.loads raises RecursionError on them, which is no ValueError."""
    text = "[" * 100000
    (tmp_path / "state.json").write_text(text)
    assert StateStore(tmp_path).load() == State()
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("state.json.corrupt")]
    assert len(kept) == 1 and kept[0].read_text() == text
    assert "is damaged" in caplog.text


def test_negative_counts_are_refused(tmp_path):
    (tmp_path / "state.json").write_text(json.dumps({"reps": -1, "total": 5, "resets": 0}))
    assert StateStore(tmp_path).load() == State()


@pytest.mark.parametrize("text", ["[]", "{}", '{"reps": 4, "total": 9}', '{"reps": true, "total": 3, "resets": 0}',
                                  '{"reps": 2.5, "total": 3, "resets": 0}', "7"],
                         ids=["list", "empty", "counts-missing", "bool", "float", "number"])
def test_valid_json_that_is_no_saved_count_is_kept_aside_not_read_as_0(tmp_path, caplog, text):
    (tmp_path / "state.json").write_text(text)
    assert StateStore(tmp_path).load() == State()
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("state.json.corrupt")]
    assert len(kept) == 1 and kept[0].read_text() == text
    assert "is damaged" in caplog.text


@pytest.mark.parametrize("updated", ['"yesterday"', "NaN", "Infinity", "1" + "0" * 400])
def test_a_bad_timestamp_costs_no_count(tmp_path, updated):
    """`status --json` prints it: NaN would not be JSON."""
    (tmp_path / "state.json").write_text('{"reps": 4, "total": 9, "resets": 1, "updated": %s}' % updated)
    assert StateStore(tmp_path).load() == State(reps=4, total=9, resets=1, updated=0.0)


def test_temp_files_of_writes_cut_short_are_removed_young_ones_kept(tmp_path):
    """A power cut between the temporary file and the rename leaves the file behind; one
    written a moment ago may be `pushup-counter reset` at work."""
    store = StateStore(tmp_path)
    store.save(State(reps=3, total=3))
    old, young = tmp_path / ".state.json.abc123.tmp", tmp_path / ".state.json.def456.tmp"
    old.write_text("{}")
    young.write_text("{}")
    os.utime(old, (os.path.getmtime(old) - 120,) * 2)
    assert StateStore(tmp_path).load().reps == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [young.name, "state.json"]


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


def test_root_gives_the_file_to_the_state_directory_owner(tmp_path, monkeypatch):
    """`pushup-counter reset` runs as root on the image: the file it writes must stay the
    daemon's (the directory owner's), or the daemon cannot read it. Simulated, so that it
    runs as any user: geteuid says root, fchown is recorded."""
    import appliance.state as state_module

    calls = []

    def fchown(fd, uid, gid):
        calls.append((os.fstat(fd).st_size, uid, gid, (tmp_path / "state.json").exists()))

    monkeypatch.setattr(state_module.os, "geteuid", lambda: 0)
    monkeypatch.setattr(state_module.os, "fchown", fchown)
    assert StateStore(tmp_path).save(State(reps=3, total=3, resets=1))
    owner = os.stat(tmp_path)
    assert calls == [(0, owner.st_uid, owner.st_gid, False)]  # the temp file, before it is renamed into place
    assert StateStore(tmp_path).load().resets == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file away")
def test_file_written_by_root_belongs_to_the_daemon_user(tmp_path):
    os.chown(tmp_path, 4242, 4343)  # the directory as StateDirectory= makes it: owned by pushup
    StateStore(tmp_path).save(State(reps=0, total=9, resets=2))
    info = os.stat(tmp_path / "state.json")
    assert (info.st_uid, info.st_gid) == (4242, 4343)
    assert stat.S_IMODE(info.st_mode) == 0o600


def test_a_state_lock_held_elsewhere_delays_a_save_briefly_not_forever(tmp_path, monkeypatch, caplog):
    """Another holder that never lets go (a stuck `reset`) froze the daemon's loop: no frames,
    no watchdog pings, killed by systemd and blocked again at its next save."""
    import fcntl
    import logging
    import os
    import threading

    import appliance.state as state_module

    monkeypatch.setattr(state_module, "LOCK_WAIT_S", 0.2)
    store = StateStore(tmp_path)
    holder = os.open(tmp_path, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)
    saved = []

    def save():
        with store.locked():
            saved.append(store.save(State(reps=3, total=3)))

    try:
        with caplog.at_level(logging.WARNING):
            worker = threading.Thread(target=save, daemon=True)
            worker.start()
            worker.join(timeout=10)
            assert not worker.is_alive() and saved == [True]
        assert any("stayed locked" in r.getMessage() for r in caplog.records)
        # The holder is still stuck: the next saves do not wait again (a 2 s stall after every
        # rep broke the counter's track and cost reps), and say nothing more.
        caplog.clear()
        sleeps = []
        monkeypatch.setattr(state_module.time, "sleep", sleeps.append)
        with caplog.at_level(logging.WARNING):
            for reps in (4, 5):
                with store.locked():
                    saved.append(store.save(State(reps=reps, total=reps)))
        assert saved == [True, True, True] and not sleeps and not caplog.records
    finally:
        os.close(holder)
    assert StateStore(tmp_path).load().reps == 5


def test_a_file_system_without_flock_saves_unlocked(tmp_path, monkeypatch):
    """NFS, CIFS and some FUSE mounts refuse flock: the save went up as a traceback, where
    before the lock a failed save never stopped the daemon."""
    import errno

    import appliance.state as state_module

    def no_flock(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(state_module.fcntl, "flock", no_flock)
    store = StateStore(tmp_path)
    with store.locked():
        assert store.save(State(reps=5, total=5)) is True
    assert StateStore(tmp_path).load().reps == 5
