#!/usr/bin/env bash
# make deploy-test: build the Debian-only arm64 image, check its layout, and run the installed
# daemon inside it under qemu-user emulation on a rendered clip.
#
#   bash deploy/deploy-test.sh            (as root; installs its tools with apt when missing)
#
# Steps:
#   1. tools: mmdebstrap, qemu-user-static with an arm64 binfmt handler, mtools, dosfstools,
#      fdisk, bmap-tools (apt-get install when missing)
#   2. deploy/build-image.sh --debian-only: base rootfs cached in build/deploy/cache/ (the
#      first build takes a while under emulation), the app installed by deploy/install.sh
#      inside it from the wheel, the image build/deploy/pushup-counter-*-debian-only.img
#   3. layout: unit enabled, user and groups, config, modules loaded at boot, locked accounts,
#      SSH off (also after the first-boot presets), DHCP client id from the MAC, fstab
#      (read-only root, data partition nofail and bind-mounted on the state dir), the daemon's
#      drop-in, partitions and labels, boot files (cmdline.txt ending the root read-only),
#      the data partition's state dir, `systemd-analyze verify` of the installed unit
#   4. the daemon, as user pushup, in the rootfs under qemu-user: `pushup-counter run --source
#      clip --display none` with GPIOZERO_PIN_FACTORY=mock, a real NOTIFY_SOCKET (a listener
#      here) and WATCHDOG_USEC; it must send READY=1, ping the watchdog, and count the clip's
#      reps (the labels .npz beside the clip).
#
# Environment: DEPLOY_TEST_OUT (default build/deploy), DEPLOY_TEST_CLIP (default: rendered by
# `python -m tools.render.sample`), DEPLOY_TEST_SKIP_BUILD=1 (reuse the last build).
# shellcheck disable=SC2016,SC2317  # awk and sh programs in single quotes; functions run via check
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
OUT=${DEPLOY_TEST_OUT:-$REPO/build/deploy}
PY=${DEPLOY_TEST_PYTHON:-$REPO/.venv/bin/python}
[ -x "$PY" ] || PY=python3

PASSED=()
FAILED=()
NOTES=()
ok() { PASSED+=("$1"); printf '  ok    %s\n' "$1"; }
bad() { FAILED+=("$1"); printf '  FAIL  %s\n' "$1" >&2; }
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then ok "$what"; else bad "$what"; fi; }
step() { printf '\n== %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }

ensure_tools() {
    step "tools"
    [ "$(id -u)" -eq 0 ] || { echo "deploy-test: run as root (chroot, mounts, file ownership)" >&2; exit 1; }
    local missing=()
    command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
    # mmdebstrap checks a foreign architecture with arch-test, only a Recommends of it: a fresh
    # machine installing with --no-install-recommends stopped at "install arch-test".
    command -v arch-test >/dev/null || missing+=(arch-test)
    command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
    command -v update-binfmts >/dev/null || missing+=(binfmt-support)
    command -v mcopy >/dev/null || missing+=(mtools)
    command -v mkfs.vfat >/dev/null || missing+=(dosfstools)
    command -v sfdisk >/dev/null || missing+=(fdisk)
    command -v bmaptool >/dev/null || missing+=(bmap-tools)
    command -v debugfs >/dev/null || missing+=(e2fsprogs)
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "installing: ${missing[*]}"
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
    fi
    if [ "$(uname -m)" != aarch64 ]; then
        if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
            mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
        fi
        if ! grep -qs '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64; then
            update-binfmts --enable qemu-aarch64
        fi
        grep -qs '^flags: .*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 \
            || { echo "deploy-test: the qemu-aarch64 binfmt handler lacks the F flag (needed in a chroot)" >&2; exit 1; }
    fi
    echo "tools ready"
}

build() {
    step "build the Debian-only image (deploy/build-image.sh --debian-only)"
    if [ "${DEPLOY_TEST_SKIP_BUILD:-0}" = 1 ] && [ -d "$OUT/work/rootfs/opt/pushup-counter/venv" ]; then
        echo "reusing $OUT/work/rootfs (DEPLOY_TEST_SKIP_BUILD=1)"
        return
    fi
    local t0=$SECONDS
    bash "$HERE/build-image.sh" --debian-only --out "$OUT"
    NOTES+=("image build: $((SECONDS - t0)) s")
}

# --- layout ---------------------------------------------------------------------------------
in_group() { awk -F: -v g="$1" -v u="$2" '$1 == g { n = split($4, m, ","); for (i = 1; i <= n; i++) if (m[i] == u) f = 1 } END { exit !f }' "$ROOT/etc/group"; }
part_offset() { "$PY" -c 'import json,sys; t=json.load(open(sys.argv[1]))["partitiontable"]; p=t["partitions"][int(sys.argv[2])]; print(p["start"]*512)' "$OUT/sfdisk.json" "$1"; }

check_layout() {
    step "image layout"
    ROOT=$OUT/work/rootfs
    IMG=$(ls "$OUT"/pushup-counter-*-arm64-debian-only.img)
    local link="$ROOT/etc/systemd/system/multi-user.target.wants/pushup-counter.service"
    check "unit enabled (multi-user.target.wants symlink)" test "$(readlink "$link")" = /etc/systemd/system/pushup-counter.service
    check "unit installed as shipped" cmp "$HERE/pushup-counter.service" "$ROOT/etc/systemd/system/pushup-counter.service"
    check "DNS: resolv.conf is systemd-resolved's stub (not the build machine's), resolved enabled" bash -c \
        "test \"\$(readlink '$ROOT/etc/resolv.conf')\" = ../run/systemd/resolve/stub-resolv.conf && ls '$ROOT'/etc/systemd/system/*.wants/systemd-resolved.service"
    check "DHCP client identifier from the MAC (the machine-id changes at every boot), wired and Wi-Fi" bash -c \
        "for f in 20-wired 25-wireless; do grep -qx 'ClientIdentifier=mac' '$ROOT'/etc/systemd/network/\$f.network || exit 1; done"
    check "wpa_passphrase in the image (the boot settings turn the Wi-Fi password into its key with it)" \
        test -x "$ROOT/usr/bin/wpa_passphrase"
    check "boot settings unit enabled" test -L "$ROOT/etc/systemd/system/multi-user.target.wants/pushup-boot-settings.service"
    check "user pushup (system, nologin)" awk -F: '$1 == "pushup" && $3 < 1000 && $7 == "/usr/sbin/nologin" { f = 1 } END { exit !f }' "$ROOT/etc/passwd"
    local g
    for g in video gpio i2c; do
        check "pushup in group $g" in_group "$g" pushup
    done
    check "config /etc/pushup-counter/config.toml" cmp "$HERE/config.toml" "$ROOT/etc/pushup-counter/config.toml"
    check "polkit rule for power-off" test -f "$ROOT/etc/polkit-1/rules.d/50-pushup-counter.rules"
    check "no account has a password" awk -F: '$2 != "*" && $2 !~ /^!/ { bad = 1 } END { exit bad }' "$ROOT/etc/shadow"
    # Every boot is a first boot (empty machine-id, /etc in RAM): systemd then applies the presets
    # (systemctl preset-all --preset-mode=enable-only). On a copy of the unit directories: it
    # must enable nothing, ssh.service least of all.
    check "first-boot presets enable nothing (ssh.service stays off)" bash -c "
        t=\$(mktemp -d) && trap 'rm -rf \"\$t\"' EXIT && mkdir -p \"\$t/usr/lib/systemd\" \"\$t/etc\" && ln -s usr/lib \"\$t/lib\" &&
        cp -a '$ROOT/usr/lib/systemd/system' '$ROOT/usr/lib/systemd/system-preset' \"\$t/usr/lib/systemd/\" &&
        cp -a '$ROOT/etc/systemd' \"\$t/etc/\" && before=\$(cd \"\$t\" && find etc/systemd/system | sort) &&
        systemctl --root=\"\$t\" preset-all --preset-mode=enable-only &&
        test \"\$(cd \"\$t\" && find etc/systemd/system | sort)\" = \"\$before\""
    check "SSH disabled, no host keys baked in" bash -c "! ls '$ROOT'/etc/ssh/ssh_host_* && ! test -e '$ROOT/etc/systemd/system/multi-user.target.wants/ssh.service'"
    check "fstab: read-only root" grep -Eq '^LABEL=RASPIROOT[[:space:]]+/[[:space:]]+ext4[[:space:]]+ro,' "$ROOT/etc/fstab"
    check "fstab: data partition on /data" grep -Eq '^LABEL=PUSHUPDATA[[:space:]]+/data[[:space:]]' "$ROOT/etc/fstab"
    check "fstab: state dir bind-mounted from /data" grep -Eq '^/data/pushup-counter[[:space:]]+/var/lib/pushup-counter[[:space:]]+none[[:space:]]+bind' "$ROOT/etc/fstab"
    check "fstab: /data and the bind mount nofail (a broken data partition must not stop the boot)" \
        awk '$2 == "/data" || $2 == "/var/lib/pushup-counter" { n++; if ($4 !~ /(^|,)nofail(,|$)/) bad = 1 } END { exit bad || n != 2 }' "$ROOT/etc/fstab"
    check "daemon's drop-in installed as shipped (state on /data, starts without it)" \
        cmp "$HERE/image/pushup-counter-image.conf" "$ROOT/etc/systemd/system/pushup-counter.service.d/image.conf"
    check "modules-load.d: i2c-dev, the camera's videodev and mc (the unit's DeviceAllow needs them)" \
        bash -c "for m in i2c-dev videodev mc; do cat '$ROOT'/etc/modules-load.d/*.conf | grep -qx \"\$m\" || exit 1; done"
    check "venv with system site packages" grep -q 'include-system-site-packages = true' "$ROOT/opt/pushup-counter/venv/pyvenv.cfg"
    check "venv keeps apt's numpy" bash -c "! ls -d '$ROOT'/opt/pushup-counter/venv/lib/python3*/site-packages/numpy"
    if command -v systemd-analyze >/dev/null; then
        check "systemd-analyze verify --root (installed unit)" systemd-analyze verify --root="$ROOT" pushup-counter.service
    fi

    sfdisk --json "$IMG" > "$OUT/sfdisk.json"
    check "3 partitions: FAT32 boot, root, data" "$PY" -c 'import json,sys; p=json.load(open(sys.argv[1]))["partitiontable"]["partitions"]; assert [x["type"] for x in p] == ["c", "83", "83"], p' "$OUT/sfdisk.json"
    local boot root data
    boot=$(part_offset 0); root=$(part_offset 1); data=$(part_offset 2)
    check "labels RASPIFIRM, RASPIROOT, PUSHUPDATA" test "$(blkid -p -O "$boot" -s LABEL -o value "$IMG") $(blkid -p -O "$root" -s LABEL -o value "$IMG") $(blkid -p -O "$data" -s LABEL -o value "$IMG")" = "RASPIFIRM RASPIROOT PUSHUPDATA"
    mtype -i "$IMG@@$boot" ::config.txt > "$OUT/config.txt" 2>/dev/null || true
    mtype -i "$IMG@@$boot" ::cmdline.txt > "$OUT/cmdline.txt" 2>/dev/null || true
    check "boot config.txt: I2C on" grep -q '^dtparam=i2c_arm=on' "$OUT/config.txt"
    check "boot config.txt: camera auto-detect" grep -q '^camera_auto_detect=1' "$OUT/config.txt"
    check "boot cmdline.txt: root=LABEL=RASPIROOT, overlayroot" grep -q 'root=LABEL=RASPIROOT.*overlayroot=tmpfs' "$OUT/cmdline.txt"
    # The last ro/rw on the line decides (kernel and initramfs); Debian's raspi-firmware puts rw
    # first. rw would leave the ext4 under the overlay writable for the box's life.
    check "boot cmdline.txt: root mounted read-only (the last ro/rw is ro)" \
        awk '{ for (i = 1; i <= NF; i++) if ($i == "ro" || $i == "rw") m = $i } END { exit m != "ro" }' "$OUT/cmdline.txt"
    check "boot partition: kernel and initrd" bash -c "mdir -b -i '$IMG@@$boot' :: | grep -q vmlinuz && mdir -b -i '$IMG@@$boot' :: | grep -q initrd"
    check "boot partition: owner's settings file" bash -c "mtype -i '$IMG@@$boot' ::pushup-counter.txt | grep -q '^ssh_authorized_key='"
    check "boot partition: pushup-counter.toml.example is the shipped config.toml" bash -c "mtype -i '$IMG@@$boot' ::pushup-counter.toml.example | tr -d '\r' | cmp - '$HERE/config.toml'"
    local uid
    uid=$(awk -F: '$1 == "pushup" { print $3 }' "$ROOT/etc/passwd")
    debugfs -R 'stat /pushup-counter' "$IMG?offset=$data" > "$OUT/data-stat.txt" 2>/dev/null || true
    check "data partition: pushup-counter/ owned by pushup, mode 0700" grep -Eq "Mode: +0700" "$OUT/data-stat.txt"
    check "data partition: owner uid $uid" grep -Eq "User: +$uid " "$OUT/data-stat.txt"
    check "root partition: fsck clean" e2fsck -fn "$IMG?offset=$root"
    check "bmap and sha256 beside the image" bash -c "test -s '$IMG.bmap' && cd '$(dirname "$IMG")' && sha256sum -c '$(basename "$IMG").sha256'"
}

# --- the daemon under emulation -----------------------------------------------------------------
MOUNTED=()
umount_all() {
    local i
    for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
        umount "${MOUNTED[i]}" 2>/dev/null || umount -l "${MOUNTED[i]}" 2>/dev/null || true
    done
    MOUNTED=()
}
trap umount_all EXIT

clip() {
    if [ -n "${DEPLOY_TEST_CLIP:-}" ]; then
        CLIP=$DEPLOY_TEST_CLIP
    else
        CLIP=$OUT/clip/sample.mp4
        step "render the clip (python -m tools.render.sample)"
        rm -rf "$OUT/clip"
        (cd "$REPO" && "$PY" -m tools.render.sample "$OUT/clip")
    fi
    [ -s "$CLIP" ] || { bad "clip $CLIP"; return 1; }
    LABELS=${CLIP%.mp4}.npz
    WANT=$("$PY" -c 'import numpy, sys; print(int(numpy.load(sys.argv[1])["reps"]))' "$LABELS")
}

run_daemon() {
    step "the daemon in the arm64 rootfs under qemu-user"
    local t="$ROOT/tmp/deploy-test" uid gid groups
    rm -rf "$t" && mkdir -p "$t/state"
    cp "$CLIP" "$t/clip.mp4"
    uid=$(awk -F: '$1 == "pushup" { print $3 }' "$ROOT/etc/passwd")
    gid=$(awk -F: '$1 == "pushup" { print $4 }' "$ROOT/etc/passwd")
    groups=$(for g in video gpio i2c; do awk -F: -v g="$g" '$1 == g { print $3 }' "$ROOT/etc/group"; done | paste -sd,)
    chown "$uid:$gid" "$t/state" && chmod 0700 "$t/state"
    chmod 0755 "$t" && chmod 0644 "$t/clip.mp4"

    mount -t proc proc "$ROOT/proc"; MOUNTED+=("$ROOT/proc")
    if [ "$(uname -m)" != aarch64 ]; then
        # ai-edge-litert segfaults under qemu-user on the host's /proc/cpuinfo.
        mount --bind "$HERE/testdata/cpuinfo-cortex-a72" "$ROOT/proc/cpuinfo"; MOUNTED+=("$ROOT/proc/cpuinfo")
    fi
    if [ "$(uname -m)" != aarch64 ]; then
        # Not the host's sysfs: XNNPACK's CPU detection reads /sys/devices/system/cpu and,
        # finding an x86 host there, picks kernels that compute garbage under qemu-user
        # (the daemon then sees nobody). An empty /sys makes it fall back to the Cortex-A72
        # cpuinfo above, as on a Pi. Nothing in the daemon needs /sys with mock pins.
        mount -t tmpfs -o size=1m,mode=0755 sysfs "$ROOT/sys"; MOUNTED+=("$ROOT/sys")
    else
        mount -t sysfs sysfs "$ROOT/sys"; MOUNTED+=("$ROOT/sys")
    fi
    mount --bind /dev "$ROOT/dev"; MOUNTED+=("$ROOT/dev")

    check "arm64 python imports numpy, scipy, av, systemd, ai_edge_litert" chroot "$ROOT" /opt/pushup-counter/venv/bin/python -c \
        'import platform, numpy, scipy.signal, av, systemd.daemon, gpiozero, luma.core; from ai_edge_litert.interpreter import Interpreter; assert platform.machine() == "aarch64"'
    # The daemon runs with --display none below: draw an OLED screen here, with the venv's
    # Pillow (apt's 9.4 on Bookworm has no sized font; setup.cfg asks pip for a newer one).
    check "OLED screen draws with a sized font (Pillow >= 10.1 in the venv)" chroot "$ROOT" /opt/pushup-counter/venv/bin/python -c \
        'from PIL import ImageFont; ImageFont.load_default(size=40); from appliance.display import Screen, draw_screen; draw_screen(Screen(12, "counting", fps=14), (128, 64))'

    # The host side of sd_notify: a datagram socket in the rootfs, messages logged with times.
    local sock="$t/notify.sock" log="$OUT/notify.jsonl"
    rm -f "$log"
    "$PY" - "$sock" "$log" <<'EOF' &
import json, os, socket, sys, time
path, log = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)
t0 = time.monotonic()
with open(log, "w") as out:
    print(json.dumps({"t": 0.0, "msg": "LISTENING"}), file=out, flush=True)
    while True:
        data = s.recv(4096).decode(errors="replace")
        print(json.dumps({"t": round(time.monotonic() - t0, 3), "msg": data}), file=out, flush=True)
        if "STOPPING=1" in data.split("\n"):
            break
EOF
    local listener=$!
    local waited=0
    until [ -S "$sock" ] || [ "$waited" -ge 50 ]; do sleep 0.1; waited=$((waited + 1)); done

    local rc=0 t0=$SECONDS
    # WATCHDOG_PID must be the daemon's pid: sh, chroot, env and python exec one another.
    sh -c 'exec chroot --userspec="$1:$2" --groups="$3" "$4" /usr/bin/env -i \
        PATH=/usr/bin:/bin HOME=/nonexistent LANG=C.UTF-8 \
        GPIOZERO_PIN_FACTORY=mock NOTIFY_SOCKET=/tmp/deploy-test/notify.sock \
        WATCHDOG_USEC=10000000 WATCHDOG_PID=$$ PUSHUP_LOG_LEVEL=INFO \
        /opt/pushup-counter/venv/bin/pushup-counter run --config /etc/pushup-counter/config.toml \
        --source /tmp/deploy-test/clip.mp4 --display none --state-dir /tmp/deploy-test/state' \
        sh "$uid" "$gid" "$groups" "$ROOT" > "$OUT/daemon.log" 2>&1 || rc=$?
    local took=$((SECONDS - t0))
    sleep 0.5
    kill "$listener" 2>/dev/null || true
    wait "$listener" 2>/dev/null || true
    NOTES+=("daemon run under qemu: ${took} s for the clip (exit $rc)")
    tail -n 15 "$OUT/daemon.log" | sed 's/^/    daemon: /'

    if [ "$rc" -eq 0 ]; then ok "daemon exited 0 at the end of the clip"; else bad "daemon exited $rc (see $OUT/daemon.log)"; fi
    check "READY=1 received on NOTIFY_SOCKET" grep -q 'READY=1' "$log"
    check "WATCHDOG=1 pings received" grep -q 'WATCHDOG=1' "$log"
    check "STOPPING=1 received" grep -q 'STOPPING=1' "$log"
    "$PY" - "$log" <<'EOF' | sed 's/^/    /' || true
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
pings = [r["t"] for r in rows if "WATCHDOG=1" in r["msg"].split("\n")]
ready = [r["t"] for r in rows if "READY=1" in r["msg"].split("\n")]
gaps = [b - a for a, b in zip(pings, pings[1:])]
statuses = [l for r in rows for l in r["msg"].split("\n") if l.startswith("STATUS=")]
print(f"notify: READY=1 at {ready[0] if ready else None} s, {len(pings)} watchdog pings, largest gap {max(gaps) if gaps else 0:.1f} s")
print("statuses:", ", ".join(dict.fromkeys(s[7:] for s in statuses)))
EOF
    local got
    got=$(chroot --userspec="$uid:$gid" "$ROOT" /opt/pushup-counter/venv/bin/pushup-counter status --state-dir /tmp/deploy-test/state --json 2>>"$OUT/daemon.log" \
        | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["reps"])' 2>/dev/null || echo "?")
    # The same count natively (x86, the checkout's venv) tells a deployment fault (emulated and
    # native differ) from a model or counter fault (both miss the labels).
    local native="?"
    if [ -x "$REPO/.venv/bin/pushup-counter" ]; then
        native=$("$REPO/.venv/bin/pushup-counter" count "$CLIP" --json 2>/dev/null \
            | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["reps"])' 2>/dev/null || echo "?")
    fi
    NOTES+=("reps: labels $WANT, arm64 under qemu $got, native $(uname -m) $native")
    if [ "$got" = "$WANT" ]; then
        ok "counted $got reps, the clip has $WANT"
    elif [ "$got" = "$native" ]; then
        bad "counted $got reps, the clip has $WANT; native $(uname -m) counts $native too: a model/counter problem, not a deployment one"
    else
        bad "counted $got reps, the clip has $WANT (native $(uname -m): $native)"
    fi
    umount_all
    rm -rf "$t"
}

main() {
    local t0=$SECONDS
    ensure_tools
    build
    check_layout
    if [ ! -x "$ROOT/opt/pushup-counter/venv/bin/pushup-counter" ]; then
        bad "pushup-counter CLI installed in the venv"
    elif clip; then
        run_daemon
    fi
    step "summary"
    local n
    for n in "${NOTES[@]}"; do echo "  $n"; done
    echo "  deploy-test: $((SECONDS - t0)) s in all"
    echo "${#PASSED[@]} passed, ${#FAILED[@]} failed"
    [ "${#FAILED[@]}" -eq 0 ]
}

main "$@"
exit $?
