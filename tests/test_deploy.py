"""Deployment scripts: flash.sh (refusals, write + read-back), install.sh --dry-run, the unit
file, the image's boot-settings script, shellcheck and systemd-analyze when installed.

All fast and local; the image build and the emulated daemon run are `make deploy-test`.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
FLASH = DEPLOY / "flash.sh"
INSTALL = DEPLOY / "install.sh"
UNIT = DEPLOY / "pushup-counter.service"
SCRIPTS = sorted(DEPLOY.glob("*.sh")) + [DEPLOY / "image" / "pushup-boot-settings", DEPLOY / "image" / "pushup-grow-data"]


def run(cmd, env=None, input=None, check=False):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([str(c) for c in cmd], env=full_env, input=input, capture_output=True, text=True, check=check, timeout=120)


# --- flash.sh -----------------------------------------------------------------------------


@pytest.fixture
def image(tmp_path):
    """A small sparse image with data in two places, its sha256 beside it."""
    img = tmp_path / "test.img"
    with open(img, "wb") as f:
        f.truncate(8 << 20)
        f.seek(4096)
        f.write(b"boot sector stand-in" * 100)
        f.seek(5 << 20)
        f.write(os.urandom(256 << 10))
    digest = hashlib.sha256(img.read_bytes()).hexdigest()
    (tmp_path / "test.img.sha256").write_text(f"{digest}  test.img\n")
    return img


def fake_system(tmp_path, disk="sdz", removable="1", size_sectors=1 << 21, mounts="", root_device="vda"):
    """A fake /sys/block/DISK (+ partition DISK1) and /proc/mounts, and a regular file standing
    in for /dev/DISK (FLASH_ASSUME_BLOCK=1)."""
    sysfs = tmp_path / "sys"
    block = sysfs / "block" / disk
    (block / f"{disk}1").mkdir(parents=True)
    (block / "removable").write_text(removable + "\n")
    (block / "size").write_text(f"{size_sectors}\n")
    (sysfs / "block" / root_device / f"{root_device}1").mkdir(parents=True, exist_ok=True)
    proc_mounts = tmp_path / "mounts"
    proc_mounts.write_text(f"/dev/{root_device}1 / ext4 rw 0 0\nproc /proc proc rw 0 0\n" + mounts)
    swaps = tmp_path / "swaps"
    swaps.write_text("Filename\tType\tSize\tUsed\tPriority\n")
    dev = tmp_path / "dev"
    dev.mkdir(exist_ok=True)
    target = dev / disk
    target.write_bytes(b"\xff" * (9 << 20))  # old card contents
    env = {"FLASH_SYSFS_ROOT": str(sysfs), "FLASH_PROC_MOUNTS": str(proc_mounts), "FLASH_PROC_SWAPS": str(swaps),
           "FLASH_ASSUME_BLOCK": "1", "FLASH_ROOT_DEVICE": f"{root_device}1"}
    return target, env


def image_digest(img: Path) -> str:
    return hashlib.sha256(img.read_bytes()).hexdigest()


def prefix_digest(path: Path, length: int) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read(length)).hexdigest()


def test_flash_plain_file_with_dd_verifies_by_read_back(tmp_path, image):
    target = tmp_path / "card.bin"
    target.write_bytes(b"\xff" * (10 << 20))
    r = run(["bash", FLASH, "--yes", image, target])
    assert r.returncode == 0, r.stderr
    assert "with dd" in r.stderr and "verified sha256" in r.stderr
    assert prefix_digest(target, image.stat().st_size) == image_digest(image)


@pytest.mark.skipif(shutil.which("bmaptool") is None, reason="bmaptool not installed")
def test_flash_plain_file_with_bmap(tmp_path, image):
    subprocess.run(["bmaptool", "create", "-o", f"{image}.bmap", str(image)], check=True, capture_output=True)
    target = tmp_path / "card.bin"
    r = run(["bash", FLASH, "--yes", image, target])
    assert r.returncode == 0, r.stderr
    assert "with bmaptool" in r.stderr and "mapped ranges" in r.stderr
    assert prefix_digest(target, image.stat().st_size) == image_digest(image)


def test_flash_detects_a_corrupt_image_sha256(tmp_path, image):
    (tmp_path / "test.img.sha256").write_text("0" * 64 + "  test.img\n")
    r = run(["bash", FLASH, "--yes", image, tmp_path / "card.bin"])
    assert r.returncode != 0 and "VERIFY FAILED" in r.stderr


def test_flash_fake_removable_disk_is_written(tmp_path, image):
    target, env = fake_system(tmp_path)
    r = run(["bash", FLASH, "--yes", image, target], env=env)
    assert r.returncode == 0, r.stderr
    assert prefix_digest(target, image.stat().st_size) == image_digest(image)


def test_flash_refuses_non_removable_disk_unless_forced(tmp_path, image):
    target, env = fake_system(tmp_path, removable="0")
    before = image_digest(target)
    r = run(["bash", FLASH, "--yes", image, target], env=env)
    assert r.returncode != 0 and "not a removable disk" in r.stderr
    assert image_digest(target) == before  # untouched
    r = run(["bash", FLASH, "--yes", "--force", image, target], env=env)
    assert r.returncode == 0, r.stderr
    assert prefix_digest(target, image.stat().st_size) == image_digest(image)


def test_flash_sd_card_in_builtin_reader_counts_as_removable(tmp_path, image):
    target, env = fake_system(tmp_path, disk="mmcblk0", removable="0")
    device = Path(env["FLASH_SYSFS_ROOT"]) / "block" / "mmcblk0" / "device"
    device.mkdir()
    (device / "type").write_text("SD\n")
    r = run(["bash", FLASH, "--yes", image, target], env=env)
    assert r.returncode == 0, r.stderr


def test_flash_refuses_the_system_disk_even_forced(tmp_path, image):
    target, env = fake_system(tmp_path, removable="1")
    env["FLASH_ROOT_DEVICE"] = "sdz1"
    r = run(["bash", FLASH, "--yes", "--force", image, target], env=env)
    assert r.returncode != 0 and "system disk" in r.stderr


def test_flash_refuses_system_disk_found_from_mounts(tmp_path, image):
    target, env = fake_system(tmp_path, root_device="sdz")
    del env["FLASH_ROOT_DEVICE"]
    mounts = Path(env["FLASH_PROC_MOUNTS"])
    mounts.write_text("/dev/sdz1 / ext4 rw 0 0\n")
    r = run(["bash", FLASH, "--yes", "--force", image, target], env=env)
    assert r.returncode != 0 and "system disk" in r.stderr


def test_flash_refuses_a_mounted_device_even_forced(tmp_path, image):
    target, env = fake_system(tmp_path, mounts="/dev/sdz1 /media/card vfat rw 0 0\n")
    r = run(["bash", FLASH, "--yes", "--force", image, target], env=env)
    assert r.returncode != 0 and "mounted on /media/card" in r.stderr


def test_flash_refuses_a_partition(tmp_path, image):
    target, env = fake_system(tmp_path)
    partition = target.parent / "sdz1"
    partition.write_bytes(b"")
    r = run(["bash", FLASH, "--yes", image, partition], env=env)
    assert r.returncode != 0 and "partition" in r.stderr


def test_flash_refuses_a_disk_smaller_than_the_image(tmp_path, image):
    target, env = fake_system(tmp_path, size_sectors=1024)
    r = run(["bash", FLASH, "--yes", image, target], env=env)
    assert r.returncode != 0 and "smaller than" in r.stderr


def test_flash_asks_first_and_will_not_ask_a_pipe(tmp_path, image):
    target = tmp_path / "card.bin"
    r = run(["bash", FLASH, image, target], input="yes\n")
    assert r.returncode != 0 and "--yes" in r.stderr
    assert not target.exists()


@pytest.fixture
def loop_device(tmp_path):
    if os.geteuid() != 0 or shutil.which("losetup") is None:
        pytest.skip("needs root and losetup")
    backing = tmp_path / "loop.bin"
    backing.write_bytes(b"\xff" * (16 << 20))
    r = subprocess.run(["losetup", "--find", "--show", str(backing)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"losetup not permitted here: {r.stderr.strip()}")
    dev = r.stdout.strip()
    yield dev
    subprocess.run(["losetup", "-d", dev], check=False)


def test_flash_real_loop_device(loop_device, image):
    # A loop device reports removable=0: refused, then written with --force and read back.
    r = run(["bash", FLASH, "--yes", image, loop_device])
    assert r.returncode != 0 and "not a removable disk" in r.stderr
    r = run(["bash", FLASH, "--yes", "--force", image, loop_device])
    assert r.returncode == 0, r.stderr
    assert prefix_digest(Path(loop_device), image.stat().st_size) == image_digest(image)


# --- build-image.sh (its argument handling and stage 1, with stub tools) ----------------------

BUILD_IMAGE = DEPLOY / "build-image.sh"


def stub_build_tools(tmp_path):
    """A PATH with stand-ins for the build's root-only and heavy tools: `id -u` says 0, `uname
    -m` aarch64 (no binfmt check), mmdebstrap records its arguments and writes its tarball, the
    image tools only exist. With BUILD_IMAGE_STAGE=base the script stops after stage 1."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    args = tmp_path / "mmdebstrap.args"
    stubs = {
        "id": f'if [ "$1" = -u ]; then echo 0; else exec {shutil.which("id")} "$@"; fi',
        "uname": f'if [ "$1" = -m ]; then echo aarch64; else exec {shutil.which("uname")} "$@"; fi',
        "mmdebstrap": f'printf "%s\\n" "$@" > {args}\nfor a; do last=$a; done\necho base > "$last"',
    }
    for tool in ("arch-test", "mke2fs", "mkfs.vfat", "mcopy", "sfdisk", "bmaptool"):
        stubs[tool] = "exit 0"
    for name, body in stubs.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "BUILD_IMAGE_STAGE": "base", "DEBIAN_MIRROR": ""}
    return env, args


@pytest.mark.parametrize("debian_only", [False, True], ids=["full", "debian-only"])
def test_build_image_names_the_image_and_runs_stage_one(tmp_path, debian_only):
    """The full build (no --debian-only) once died at the image's name, silently: `$([ ... ] &&
    echo ...)` is false there, and set -e ends the script. deploy-test builds --debian-only
    only, so the full build's argument handling and stage 1 are run here."""
    env, args = stub_build_tools(tmp_path)
    out = tmp_path / "out"
    r = run(["bash", BUILD_IMAGE, "--out", out] + (["--debian-only"] if debian_only else []), env=env)
    assert r.returncode == 0, r.stderr
    name = "pushup-counter-bookworm-arm64-debian-only.img" if debian_only else "pushup-counter-bookworm-arm64.img"
    assert f"building {out}/{name}" in r.stderr
    assert "stopping after the base rootfs" in r.stderr
    mmdebstrap = args.read_text().splitlines()
    include = next(a for a in mmdebstrap if a.startswith("--include=")).split("=", 1)[1].split(",")
    assert ("linux-image-rpi-v8" in include) is not debian_only and ("linux-image-arm64" in include) is debian_only
    assert any("raspi.list" in a for a in mmdebstrap) is not debian_only
    assert len(list((out / "cache").glob("base-bookworm-arm64-*.tar"))) == 1


def test_build_image_kernel_command_line_mounts_the_root_read_only(tmp_path):
    """Debian's raspi-firmware writes `root=... rw ...` into cmdline.txt and appends
    /etc/default/raspi-extra-cmdline: that must end the line with `ro` (the last ro/rw wins),
    or the ext4 under the overlay is mounted read-write for the box's life. The stage-1 hooks
    are run here on an empty directory, as mmdebstrap would."""
    env, args = stub_build_tools(tmp_path)
    r = run(["bash", BUILD_IMAGE, "--out", tmp_path / "out", "--debian-only"], env=env)
    assert r.returncode == 0, r.stderr
    target = tmp_path / "target"
    target.mkdir()
    for arg in args.read_text().splitlines():
        if arg.startswith("--essential-hook="):
            subprocess.run(["sh", "-c", arg.split("=", 1)[1], "sh", str(target)], check=True)
    extra = (target / "etc" / "default" / "raspi-extra-cmdline").read_text().split()
    assert "overlayroot=tmpfs:recurse=0" in extra
    assert [w for w in extra if w in ("ro", "rw")][-1:] == ["ro"]
    assert "ROOTPART=LABEL=RASPIROOT" in (target / "etc" / "default" / "raspi-firmware").read_text()


# --- install.sh -----------------------------------------------------------------------------


def test_install_dry_run_prints_the_steps(tmp_path):
    wheel = tmp_path / "pushup_counter-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"")
    r = run(["bash", INSTALL, "--dry-run", "--wheel", wheel], env={"PI_BOOT_CONFIG": str(tmp_path / "config.txt")})
    assert r.returncode == 0, r.stderr
    out = r.stdout
    steps = [
        "+ apt-get update",
        "apt-get install -y --no-install-recommends python3-venv",
        "python3-picamera2",
        "python3-lgpio",
        "python3-systemd",
        "+ python3 -m venv --system-site-packages /opt/pushup-counter/venv",
        f"+ /opt/pushup-counter/venv/bin/pip install --upgrade --constraint /opt/pushup-counter/constraints.txt {wheel}\\[pi\\]",
        "+ install -m 0644 " + str(DEPLOY / "pushup-counter.service") + " /etc/systemd/system/pushup-counter.service",
        "+ systemctl daemon-reload",
        "+ systemctl enable pushup-counter.service",
        "+ systemctl restart pushup-counter.service",
    ]
    positions = []
    for step in steps:
        assert step in out, f"missing {step!r} in:\n{out}"
        positions.append(out.index(step))
    assert positions[:1] + positions[5:] == sorted(positions[:1] + positions[5:]), "steps out of order"
    assert re.search(r"\+ (useradd .*--system.*--groups video\\?,gpio\\?,i2c pushup|usermod --append --groups video\\?,gpio\\?,i2c pushup)", out)
    assert "camera_auto_detect=1" in out
    assert "raspi-config nonint do_i2c 0" in out or "dtparam=i2c_arm=on" in out
    if not Path("/etc/modules-load.d/pushup-counter.conf").exists():  # else the lines may be there already
        for module in ("videodev", "mc"):  # the unit's DeviceAllow=char-video4linux/char-media need them at start
            assert f"+ echo {module} >> /etc/modules-load.d/pushup-counter.conf" in out
    assert out.index("+ modprobe -a videodev mc") < out.index("+ systemctl restart")  # loaded for this start too
    # the config: installed when absent, never overwritten
    if not Path("/etc/pushup-counter/config.toml").exists():
        assert "/etc/pushup-counter/config.toml" in out and "install -m 0644 " + str(DEPLOY / "config.toml") in out
    assert not (tmp_path / "config.txt").exists(), "a dry run must change nothing"


def test_install_dry_run_debian_only_and_no_start(tmp_path):
    wheel = tmp_path / "pushup_counter-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"")
    r = run(["bash", INSTALL, "-n", "--wheel", wheel, "--debian-only", "--no-start", "--no-boot-config"])
    assert r.returncode == 0, r.stderr
    assert "picamera2" not in r.stdout and "lgpio" not in r.stdout
    assert "systemctl enable" in r.stdout and "systemctl restart" not in r.stdout
    assert "config.txt" not in r.stdout
    if not Path("/etc/modules-load.d/pushup-counter.conf").exists():
        assert "+ echo videodev >> /etc/modules-load.d/pushup-counter.conf" in r.stdout  # the unit's, not boot config


def boot_config_appends(tmp_path, text: str) -> list[str]:
    """What install.sh --dry-run would append to a config.txt holding TEXT."""
    config = tmp_path / "config.txt"
    config.write_bytes(text.encode())
    r = run(["bash", INSTALL, "--dry-run", "--no-apt", "--wheel", tmp_path / "x.whl"], env={"PI_BOOT_CONFIG": str(config)})
    assert r.returncode == 0, r.stderr
    assert config.read_bytes() == text.encode(), "a dry run must change nothing"
    suffix = f" >> {config}"
    return [line[len("+ echo "):-len(suffix)] for line in r.stdout.splitlines() if line.endswith(suffix)]


RPI_OS_CONFIG = """# Raspberry Pi OS's config.txt ends with sections for some boards only
dtparam=audio=on
[cm4]
otg_mode=1
camera_auto_detect=1

[cm5]
dtoverlay=dwc2,dr_mode=host
"""


def test_install_adds_boot_config_lines_for_every_board_not_the_last_section(tmp_path):
    """Lines appended to config.txt belong to its last section: after Raspberry Pi OS's [cm5]
    they would turn the camera on for a CM5 only. They go under an [all] of their own (once),
    and a line that is only in another board's section counts as missing."""
    appended = boot_config_appends(tmp_path, RPI_OS_CONFIG)
    assert appended[0] == "\\[all\\]" and appended.count("\\[all\\]") == 1, appended
    assert "camera_auto_detect=1" in appended[1:]
    if shutil.which("raspi-config") is None:
        assert "dtparam=i2c_arm=on" in appended[1:]


def test_install_boot_config_under_an_existing_all_or_already_there(tmp_path):
    appended = boot_config_appends(tmp_path, RPI_OS_CONFIG + "\n[all]\nhdmi_force_hotplug=1\n")
    assert "\\[all\\]" not in appended and "camera_auto_detect=1" in appended
    there = "camera_auto_detect=1\r\ndtparam=i2c_arm=on\r\n[cm4]\r\notg_mode=1\r\n[all]\r\n"
    assert boot_config_appends(tmp_path, there) == []
    # no newline at the end of the file: the first line added starts a line of its own
    appended = boot_config_appends(tmp_path, "dtparam=audio=on")
    assert appended[0] == "''" and "camera_auto_detect=1" in appended


def test_uninstall_keeps_state_unless_purge():
    r = run(["bash", INSTALL, "--dry-run", "--uninstall"])
    assert r.returncode == 0, r.stderr
    assert "+ systemctl disable --now pushup-counter.service" in r.stdout
    assert "+ rm -rf /opt/pushup-counter" in r.stdout
    assert "/var/lib/pushup-counter" not in [line for line in r.stdout.splitlines() if line.startswith("+ rm")][0]
    assert not any("/var/lib/pushup-counter" in line for line in r.stdout.splitlines() if line.startswith("+"))
    r = run(["bash", INSTALL, "--dry-run", "--uninstall", "--purge"])
    assert r.returncode == 0, r.stderr
    assert "+ rm -rf /etc/pushup-counter /var/lib/pushup-counter" in r.stdout
    assert "+ userdel pushup" in r.stdout


def test_install_rejects_unknown_options():
    assert run(["bash", INSTALL, "--frobnicate"]).returncode == 2
    assert run(["bash", INSTALL, "--purge"]).returncode == 2


def test_pillow_requirement_replaces_bookworms_apt_pillow():
    """The venv sees apt's python3-pil (9.4 on Bookworm) and pip keeps any package that meets
    the requirement: the OLED's sized font needs Pillow 10.1, so setup.cfg must ask for it."""
    m = re.search(r"^\s*pillow>=(\d+)\.(\d+)", (ROOT / "setup.cfg").read_text(), re.MULTILINE)
    assert m, "no pillow>=X.Y in setup.cfg"
    assert (int(m.group(1)), int(m.group(2))) >= (10, 1)


# --- the unit file --------------------------------------------------------------------------


def unit_entries(path: Path) -> dict[str, list[str]]:
    entries: dict[str, list[str]] = {}
    section = ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        entries.setdefault(f"{section}.{key}", []).append(value)
    return entries


def test_unit_has_the_required_keys():
    u = unit_entries(UNIT)
    one = {k: v[-1] for k, v in u.items()}
    assert one["Service.Type"] == "notify"
    assert one["Service.ExecStart"] == (
        "/opt/pushup-counter/venv/bin/pushup-counter run --config /etc/pushup-counter/config.toml --state-dir ${STATE_DIRECTORY}")
    assert re.fullmatch(r"\d+s?", one["Service.WatchdogSec"])
    assert one["Service.Restart"] == "on-failure"
    assert "Unit.StartLimitIntervalSec" in one and "Unit.StartLimitBurst" in one
    assert one["Service.User"] == "pushup"
    assert set(one["Service.SupplementaryGroups"].split()) == {"video", "gpio", "i2c"}
    assert one["Service.StateDirectory"] == "pushup-counter" and one["Service.StateDirectoryMode"] == "0700"
    assert one["Service.ConfigurationDirectory"] == "pushup-counter"
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
                       "PrivateNetwork": "yes", "ProtectKernelTunables": "yes", "ProtectControlGroups": "yes",
                       "RestrictNamespaces": "yes", "LockPersonality": "yes", "CapabilityBoundingSet": "",
                       "UMask": "0077", "DevicePolicy": "closed"}.items():
        assert one.get(f"Service.{key}") == value, key
    assert "@system-service" in u["Service.SystemCallFilter"]
    assert "PrivateDevices" not in one, "would hide the camera, I2C and GPIO devices"
    allowed = " ".join(u["Service.DeviceAllow"])
    for dev in ("char-video4linux", "char-media", "char-dma_heap", "char-i2c", "char-gpiochip"):
        assert dev in allowed
    assert one["Install.WantedBy"] == "multi-user.target"


def test_a_missing_camera_restarts_the_daemon_for_ever_not_into_the_start_limit():
    """With no camera the daemon exits after [camera].restart_after_s for a fresh start; those
    restarts must stay within StartLimitBurst per StartLimitIntervalSec (systemd refuses only
    starts beyond the burst), or systemd would give up on a box whose camera comes back (a
    reseated cable, a late probe). Checked at the shortest setting the config accepts."""
    from appliance.config import CameraConfig, ConfigError

    one = {k: v[-1] for k, v in unit_entries(UNIT).items()}
    interval, burst = float(one["Unit.StartLimitIntervalSec"]), int(one["Unit.StartLimitBurst"])
    restart_s = float(one["Service.RestartSec"].rstrip("s"))
    with pytest.raises(ConfigError, match=r"\[camera\]\.restart_after_s"):
        CameraConfig(restart_after_s=59.0).validate()
    CameraConfig(restart_after_s=60.0).validate()
    for after_s in (60.0, CameraConfig().restart_after_s):
        starts_in_any_interval = int(interval // (after_s + restart_s)) + 1
        assert starts_in_any_interval <= burst


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_unit_passes_systemd_analyze_verify(tmp_path):
    unit = tmp_path / "pushup-counter.service"
    text = UNIT.read_text()
    if not Path("/opt/pushup-counter/venv/bin/pushup-counter").exists():  # not installed here
        text = text.replace("/opt/pushup-counter/venv/bin/pushup-counter", shutil.which("true"))
    unit.write_text(text)
    r = run(["systemd-analyze", "verify", unit])
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_unit_security_exposure_stays_low():
    r = run(["systemd-analyze", "security", "--offline=yes", UNIT])
    m = re.search(r"Overall exposure level for pushup-counter.service: ([\d.]+)", r.stdout + r.stderr)
    if m is None:
        pytest.skip(f"systemd-analyze security --offline not supported: {r.stderr.strip()[:200]}")
    assert float(m.group(1)) <= 1.5, r.stdout


# --- the image's networking ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["20-wired.network", "25-wireless.network"])
def test_dhcp_client_identifier_survives_a_reboot(name):
    """The image's machine-id is made at every boot (/etc is in the RAM overlay). networkd's
    default DHCP client identifier is a DUID from the machine-id: the router would give the
    box a new address at every boot, and `ssh root@ADDRESS` would stop working."""
    u = unit_entries(DEPLOY / "image" / name)
    assert u.get("DHCPv4.ClientIdentifier") == ["mac"]
    assert u.get("DHCPv6.DUIDType") == ["link-layer"]
    assert u.get("Network.DHCP") == ["yes"]


# --- the image's data partition --------------------------------------------------------------

GROW_DATA = DEPLOY / "image" / "pushup-grow-data"


def sd_card(tmp_path, mib=100):
    """An SD card stand-in: an image file with the image's three partitions (the last one
    small), a fake /sys/class/block for it, and a PATH whose partx only records its calls."""
    dev = tmp_path / "dev"
    dev.mkdir()
    card = dev / "mmcblk0"
    with open(card, "wb") as f:
        f.truncate(mib << 20)
    table = ("label: dos\nunit: sectors\n\nstart=8192, size=16384, type=c\n"
             "start=24576, size=32768, type=83\nstart=57344, size=16384, type=83\n")
    subprocess.run(["sfdisk", "--quiet", str(card)], input=table, text=True, check=True)
    (dev / "mmcblk0p3").write_text("")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "partx").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "partx.log"}\n')
    (bin_dir / "partx").chmod(0o755)
    env = {"PUSHUP_SYS_CLASS_BLOCK": str(tmp_path / "sys" / "class" / "block"), "PUSHUP_DEV_DIR": str(dev),
           "PUSHUP_DATA_PART": str(dev / "mmcblk0p3"), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return card, env


def sysfs_from(card: Path, tmp_path: Path) -> tuple[int, int]:
    """What the kernel would show in /sys/class/block for the card as its table is now."""
    table = json.loads(subprocess.run(["sfdisk", "--json", str(card)], capture_output=True, text=True,
                                      check=True).stdout)["partitiontable"]
    p3 = table["partitions"][2]
    disk = tmp_path / "sys" / "devices" / "mmc0" / "block" / "mmcblk0"
    (disk / "mmcblk0p3").mkdir(parents=True, exist_ok=True)
    (disk / "size").write_text(f"{card.stat().st_size // 512}\n")
    for key, value in (("partition", 3), ("start", p3["start"]), ("size", p3["size"])):
        (disk / "mmcblk0p3" / key).write_text(f"{value}\n")
    link = tmp_path / "sys" / "class" / "block" / "mmcblk0p3"
    if not link.is_symlink():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("../../devices/mmc0/block/mmcblk0/mmcblk0p3")
    return p3["start"], p3["size"]


@pytest.mark.skipif(shutil.which("sfdisk") is None, reason="sfdisk not installed")
def test_grow_data_grows_once_then_writes_nothing(tmp_path):
    """First boot: the data partition grows to the end of the card. Every boot after: the
    partition table is left alone (no write for a power cut to land on), also after the card
    is found to have a few sectors more than the partition covers (less than 1 MiB)."""
    card, env = sd_card(tmp_path)
    sysfs_from(card, tmp_path)
    r = run(["bash", GROW_DATA], env=env)
    assert r.returncode == 0, r.stderr
    assert "growing mmcblk0p3 to the end of mmcblk0" in r.stdout
    start, size = sysfs_from(card, tmp_path)
    assert (start, start + size) == (57344, 100 * 2048)
    assert (tmp_path / "partx.log").read_text() == f"--update --nr 3 {card}\n"

    for extra in (0, 1000):  # sectors past the partition's end
        with open(card, "r+b") as f:
            f.truncate((100 << 20) + extra * 512)
        sysfs_from(card, tmp_path)
        os.utime(card, ns=(0, 0))
        before = card.read_bytes()[:512]
        r = run(["bash", GROW_DATA], env=env)
        assert r.returncode == 0, r.stderr
        assert "fills mmcblk0 already" in r.stdout
        assert card.stat().st_mtime_ns == 0, "the partition table was written again"
        assert card.read_bytes()[:512] == before
    assert (tmp_path / "partx.log").read_text().count("--update") == 1


FSTAB_GENERATOR = Path("/usr/lib/systemd/system-generators/systemd-fstab-generator")


def test_image_fstab_a_broken_data_partition_does_not_stop_the_boot():
    """Without nofail, a data partition that is missing or will not mount fails
    local-fs.target: emergency mode, root locked, blank OLED, no SSH. With it the box boots,
    and the daemon reports the storage error itself."""
    lines = {f[1]: f for f in (line.split() for line in (DEPLOY / "image" / "fstab").read_text().splitlines())
             if f and not f[0].startswith("#")}
    assert lines["/"][3].startswith("ro,")
    for mount_point in ("/data", "/var/lib/pushup-counter"):
        assert "nofail" in lines[mount_point][3].split(","), mount_point
    assert "nofail" not in lines["/boot/firmware"][3]


@pytest.mark.skipif(not FSTAB_GENERATOR.exists(), reason="systemd-fstab-generator not installed")
def test_image_fstab_as_systemd_reads_it(tmp_path):
    """What systemd-fstab-generator makes of the image's fstab: /data and the bind mount are
    only wanted by local-fs.target (its failure does not fail the boot), not required, and a
    missing data partition is waited for briefly."""
    r = run([FSTAB_GENERATOR, tmp_path, tmp_path, tmp_path],
            env={"SYSTEMD_FSTAB": str(DEPLOY / "image" / "fstab"), "SYSTEMD_PROC_CMDLINE": "root=LABEL=RASPIROOT ro"})
    assert r.returncode == 0, r.stderr
    required = {p.name for p in (tmp_path / "local-fs.target.requires").iterdir()}
    wanted = {p.name for p in (tmp_path / "local-fs.target.wants").iterdir()}
    assert "boot-firmware.mount" in required
    assert {"data.mount", "var-lib-pushup\\x2dcounter.mount"} <= wanted
    assert not {"data.mount", "var-lib-pushup\\x2dcounter.mount"} & required
    assert (tmp_path / "data.mount.wants" / "systemd-growfs@data.service").exists()
    # A missing data partition is given up on after 10 s, not systemd's default 90 s: the
    # daemon starts after data.mount, and its OLED stayed dark for that long.
    timeout = (tmp_path / "dev-disk-by\\x2dlabel-PUSHUPDATA.device.d" / "50-device-timeout.conf").read_text()
    assert "JobRunningTimeoutSec=10s" in timeout.split()


def test_image_daemon_counts_on_the_data_partition_and_starts_without_it():
    """The image's drop-in: no RequiresMountsFor (a missing data partition would keep the
    daemon from starting, blank OLED); the state directory is /data/pushup-counter itself, so
    with the partition missing it is read-only (ProtectSystem=strict) and the daemon says
    "storage error" instead of counting into the RAM overlay."""
    u = unit_entries(DEPLOY / "image" / "pushup-counter-image.conf")
    assert not any(k.endswith("RequiresMountsFor") or k.startswith("Unit.Requires") for k in u)
    assert "data.mount" in " ".join(u["Unit.After"]).split()
    assert u["Service.StateDirectory"] == [""]  # resets the unit's StateDirectory=pushup-counter
    assert u["Service.ReadWritePaths"] == ["-/data/pushup-counter"]
    assert u["Service.Environment"] == ["STATE_DIRECTORY=/data/pushup-counter"]
    assert "${STATE_DIRECTORY}" in unit_entries(UNIT)["Service.ExecStart"][-1]
    boot_settings = unit_entries(DEPLOY / "image" / "pushup-boot-settings.service")
    assert "/data" not in " ".join(boot_settings["Unit.RequiresMountsFor"]).split()
    assert "data.mount" in " ".join(boot_settings["Unit.After"]).split()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_image_dropin_passes_systemd_analyze_verify(tmp_path):
    unit = tmp_path / "pushup-counter.service"
    unit.write_text(UNIT.read_text().replace("/opt/pushup-counter/venv/bin/pushup-counter", shutil.which("true")))
    (tmp_path / "pushup-counter.service.d").mkdir()
    shutil.copy(DEPLOY / "image" / "pushup-counter-image.conf", tmp_path / "pushup-counter.service.d" / "image.conf")
    r = run(["systemd-analyze", "verify", unit])
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr


# --- the image's boot-settings script -------------------------------------------------------


def recorder(tmp_path, name):
    """A fake command that appends its arguments to NAME.log: the boot-settings script runs
    systemctl and hostname, which must not touch the machine running the tests (as root)."""
    calls = tmp_path / f"{name}.log"
    command = tmp_path / name
    command.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    command.chmod(0o755)
    return command, calls


def wpa_passphrase(tmp_path) -> str:
    """wpa_passphrase (wpasupplicant, in the image), or a stand-in with its interface when the
    machine running the tests has none: SSID as the argument, password on stdin."""
    real = shutil.which("wpa_passphrase")
    if real:
        return real
    fake = tmp_path / "wpa_passphrase"
    fake.write_text(f"""#!{sys.executable}
import hashlib, os, sys
password = sys.stdin.buffer.readline().rstrip(b"\\n")
if not 8 <= len(password) <= 63:
    sys.exit("Passphrase must be 8..63 characters")
print("network={{")
print("\\tpsk=" + hashlib.pbkdf2_hmac("sha1", password, os.fsencode(sys.argv[1]), 4096, 32).hex())
print("}}")
""")
    fake.chmod(0o755)
    return str(fake)


def psk(password: str, ssid: str) -> str:
    """WPA's pre-shared key: PBKDF2-HMAC-SHA1 of the password, salted with the SSID."""
    return hashlib.pbkdf2_hmac("sha1", password.encode(), ssid.encode(), 4096, 32).hex()


def boot_settings_env(tmp_path, settings: str):
    boot, etc = tmp_path / "boot", tmp_path / "etc"
    boot.mkdir()
    etc.mkdir()
    (etc / "hosts").write_text("127.0.1.1\told\n")
    (boot / "pushup-counter.txt").write_text(settings)
    fake_systemctl, calls = recorder(tmp_path, "systemctl")
    fake_hostname, _ = recorder(tmp_path, "hostname")
    env = {"PUSHUP_BOOT_DIR": str(boot), "PUSHUP_DATA_DIR": str(tmp_path / "data"), "PUSHUP_ETC_DIR": str(etc),
           "PUSHUP_RUN_DIR": str(tmp_path / "run"), "PUSHUP_SYSTEMCTL": str(fake_systemctl),
           "PUSHUP_HOSTNAME_CMD": str(fake_hostname), "PUSHUP_WPA_PASSPHRASE": wpa_passphrase(tmp_path)}
    return env, etc / "wpa_supplicant" / "wpa_supplicant-wlan0.conf", calls


@pytest.mark.parametrize("ssid_line, password_line", [
    ("""wifi_ssid=Joe's "5G" net""", """wifi_password=pa"ss\\word $HOME'"""),
    ("""wifi_ssid="Joe's "5G" net" """, """wifi_password="pa"ss\\word $HOME'" """),
], ids=["bare", "quoted"])
def test_boot_settings_wifi_name_and_password_keep_every_character(tmp_path, ssid_line, password_line):
    """Quotes, backslashes and dollars in a Wi-Fi name or password reach wpa_supplicant as
    they are (once, `"` was dropped from both: the box never joined). The name is written as
    hex, the password as its PSK: no plain-text password in /etc either."""
    ssid, password = """Joe's "5G" net""", """pa"ss\\word $HOME'"""
    env, conf, calls = boot_settings_env(tmp_path, f"wifi_country=de\n{ssid_line}\n{password_line}\n")
    r = run(["bash", DEPLOY / "image" / "pushup-boot-settings"], env=env)
    assert r.returncode == 0, r.stderr
    wpa = conf.read_text()
    assert f"    ssid={ssid.encode().hex()}\n" in wpa
    assert f"    psk={psk(password, ssid)}\n" in wpa
    assert "country=DE\n" in wpa and "key_mgmt" not in wpa and "word" not in wpa
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    assert "start wpa_supplicant@wlan0.service" in calls.read_text()


@pytest.mark.parametrize("password, why", [
    ("short12", "wifi_password is 7 characters long: a WPA password has 8 to 63"),
    ("x" * 64, "wifi_password is 64 characters long"),
])
def test_boot_settings_refuse_a_wifi_password_wpa_cannot_use(tmp_path, password, why):
    """A password WPA cannot use is said in the journal, and no Wi-Fi is set up with it."""
    env, conf, calls = boot_settings_env(tmp_path, f"wifi_ssid=Home\nwifi_password={password}\n")
    r = run(["bash", DEPLOY / "image" / "pushup-boot-settings"], env=env)
    assert r.returncode == 0, r.stderr
    assert "ignoring the Wi-Fi settings for 'Home': " + why in r.stdout
    assert not conf.exists() and not conf.with_name(conf.name + ".new").exists()
    assert not calls.exists() or "wpa_supplicant" not in calls.read_text()


def test_boot_settings_wifi_psk_in_hex_open_network_and_bad_country(tmp_path):
    raw = "0123456789abcdef" * 4  # the 64-hex-digit PSK, as some routers show it
    env, conf, _ = boot_settings_env(tmp_path, f"wifi_country=Britain\nwifi_ssid=Home\nwifi_password={raw}\n")
    r = run(["bash", DEPLOY / "image" / "pushup-boot-settings"], env=env)
    assert r.returncode == 0, r.stderr
    assert f"    psk={raw}\n" in conf.read_text() and "country" not in conf.read_text()
    assert "ignoring wifi_country 'BRITAIN'" in r.stdout
    conf.unlink()
    (tmp_path / "boot" / "pushup-counter.txt").write_text("wifi_ssid=Cafe\nwifi_password=\n")
    r = run(["bash", DEPLOY / "image" / "pushup-boot-settings"], env=env)
    assert r.returncode == 0, r.stderr
    assert f"    ssid={b'Cafe'.hex()}\n    key_mgmt=NONE\n" in conf.read_text()


def test_boot_settings_apply_hostname_wifi_ssh_and_config(tmp_path):
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen not installed")
    boot, data, etc, runtime = (tmp_path / d for d in ("boot", "data", "etc", "run"))
    for d in (boot, data, etc / "pushup-counter", runtime):
        d.mkdir(parents=True)
    (etc / "hosts").write_text("127.0.0.1\tlocalhost\n127.0.1.1\tpushup-counter\n")
    (boot / "pushup-counter.txt").write_text(
        (DEPLOY / "image" / "pushup-counter.txt").read_text()
        .replace("hostname=pushup-counter", "hostname=gym-pi")
        .replace("wifi_country=", "wifi_country=GB").replace("wifi_ssid=", 'wifi_ssid="Home Net"')
        .replace("wifi_password=", "wifi_password=s3cret-pw\r")
        .replace("ssh_authorized_key=", "ssh_authorized_key=ssh-ed25519 AAAAC3Nza owner@laptop"))
    (boot / "pushup-counter.toml").write_text("[buzzer]\nenabled = false\n")
    fake_systemctl, calls = recorder(tmp_path, "systemctl")
    fake_hostname, names = recorder(tmp_path, "hostname")
    env = {"PUSHUP_BOOT_DIR": str(boot), "PUSHUP_DATA_DIR": str(data), "PUSHUP_ETC_DIR": str(etc),
           "PUSHUP_RUN_DIR": str(runtime), "PUSHUP_SYSTEMCTL": str(fake_systemctl),
           "PUSHUP_HOSTNAME_CMD": str(fake_hostname), "PUSHUP_WPA_PASSPHRASE": wpa_passphrase(tmp_path)}
    r = run(["bash", DEPLOY / "image" / "pushup-boot-settings"], env=env)
    assert r.returncode == 0, r.stderr
    assert (etc / "hostname").read_text() == "gym-pi\n"
    assert names.read_text() == "gym-pi\n"  # the running system's name, set through the fake
    assert "127.0.1.1\tgym-pi" in (etc / "hosts").read_text()
    wpa = (etc / "wpa_supplicant" / "wpa_supplicant-wlan0.conf").read_text()
    assert f"ssid={b'Home Net'.hex()}" in wpa and f"psk={psk('s3cret-pw', 'Home Net')}" in wpa and "country=GB" in wpa
    assert (runtime / "pushup-ssh" / "authorized_keys_root").read_text() == "ssh-ed25519 AAAAC3Nza owner@laptop\n"
    assert (data / "ssh" / "ssh_host_ed25519_key").exists()
    assert (etc / "pushup-counter" / "config.toml").read_text() == "[buzzer]\nenabled = false\n"
    log = calls.read_text()
    assert "start wpa_supplicant@wlan0.service" in log and "start ssh.service" in log


def test_boot_settings_default_file_leaves_ssh_off(tmp_path):
    boot, etc = tmp_path / "boot", tmp_path / "etc"
    boot.mkdir()
    etc.mkdir()
    (etc / "hosts").write_text("127.0.1.1\told\n")
    shutil.copy(DEPLOY / "image" / "pushup-counter.txt", boot / "pushup-counter.txt")
    fake_hostname, names = recorder(tmp_path, "hostname")
    env = {"PUSHUP_BOOT_DIR": str(boot), "PUSHUP_DATA_DIR": str(tmp_path / "data"), "PUSHUP_ETC_DIR": str(etc),
           "PUSHUP_RUN_DIR": str(tmp_path / "run"), "PUSHUP_SYSTEMCTL": "false", "PUSHUP_HOSTNAME_CMD": str(fake_hostname)}
    r = run(["bash", DEPLOY / "image" / "pushup-boot-settings"], env=env)
    assert r.returncode == 0, r.stderr
    assert "SSH stays off" in r.stdout
    assert names.read_text() == "pushup-counter\n"  # the shipped file's name
    assert not (tmp_path / "run").exists() and not (tmp_path / "data").exists()


def test_default_config_loads():
    from appliance.config import load_config

    load_config(DEPLOY / "config.toml")


def test_shipped_config_shows_every_setting_with_its_default():
    """deploy/config.toml (the image's pushup-counter.toml.example) shows every setting but the
    counter's tuning as a commented `# key = default` line: uncomment those lines (not the
    prose) and load them, so a renamed, missing or misstated key fails here."""
    import dataclasses

    from appliance.config import Config, config_from_dict

    key_line = re.compile(r"^# ([a-z][a-z0-9_]* = .*)$")  # i2c_port: digits too
    lines = (DEPLOY / "config.toml").read_text().splitlines()
    sections = tomllib.loads("\n".join(key_line.sub(r"\1", line) for line in lines))
    for f in dataclasses.fields(Config):
        if f.name == "counter":  # a pointer to CounterSettings, not for owners to change
            assert f.name not in sections
            continue
        assert set(sections.get(f.name, {})) == {g.name for g in dataclasses.fields(getattr(Config(), f.name))}, f.name
    # The models' default is where they are installed: the file shows the appliance's.
    assert sections["models"].pop("dir") == "/opt/pushup-counter/venv/share/pushup-counter/models"
    assert config_from_dict(sections, source="deploy/config.toml") == Config()


# --- shellcheck -----------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shellcheck_clean(script):
    r = run(["shellcheck", "--shell=bash", script])
    assert r.returncode == 0, r.stdout
