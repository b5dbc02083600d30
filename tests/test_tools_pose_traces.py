"""Trace collection runs the real CLI with the config it is given, rendered clips included
(the recogniser's training traces are one-pass keypoints: [models] flip_average = false)."""
from tools import pose_traces


def test_collect_rendered_passes_the_config_to_the_cli(tmp_path, monkeypatch):
    import tools.render

    seen = {}
    monkeypatch.setattr(tools.render, "render_clip", lambda video, **spec: video.write_bytes(b""))
    monkeypatch.setattr(pose_traces, "_run_cli", lambda jobs, workers, config=None: seen.update(jobs=jobs, config=config))
    pose_traces.main(["collect-rendered", "--clips", "2", "--out", str(tmp_path), "--config", "onepass.toml"])
    assert seen["config"] == "onepass.toml" and len(seen["jobs"]) == 2
