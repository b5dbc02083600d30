#!/usr/bin/env bash
# Install the push-up counter on an existing Raspberry Pi OS (Bookworm or Trixie, 64-bit).
#
#   sudo deploy/install.sh [--wheel dist/pushup_counter-X.whl] [--dry-run] [--no-start]
#   sudo deploy/install.sh --uninstall [--purge] [--dry-run]
#
#   --dry-run    print each command instead of running it (needs no root, changes nothing)
#   --no-start   install and enable the service, but do not (re)start it now
#   --no-apt     skip apt (the packages are there already: image builds, tests)
#   --no-boot-config  leave I2C/camera settings alone (the image build sets them itself)
#   --debian-only  skip the packages only Raspberry Pi OS has (picamera2, lgpio): tests on Debian
#   --uninstall  stop, disable and remove the service and the venv; keeps the config and the
#                saved count (state) unless --purge, which also removes them and the user
#
# Safe to run again: an upgrade is the same command with a newer wheel. An existing
# /etc/pushup-counter/config.toml is never overwritten.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)

PREFIX=/opt/pushup-counter
VENV=$PREFIX/venv
CONFIG_DIR=/etc/pushup-counter
CONFIG=$CONFIG_DIR/config.toml
STATE_DIR=/var/lib/pushup-counter
UNIT=pushup-counter.service
UNIT_PATH=/etc/systemd/system/$UNIT
POLKIT_RULE=/etc/polkit-1/rules.d/50-pushup-counter.rules
MODULES_LOAD=/etc/modules-load.d/pushup-counter.conf
SERVICE_USER=pushup
GROUPS_NEEDED=(video gpio i2c)
# The firmware config: /boot/firmware/config.txt since Bookworm, /boot/config.txt before.
BOOT_CONFIG=${PI_BOOT_CONFIG:-}
APT_PACKAGES=(
    python3-venv python3-pip python3-numpy python3-scipy python3-pil python3-av
    python3-systemd python3-lgpio python3-picamera2 i2c-tools polkitd
)

DRY_RUN=0
UNINSTALL=0
PURGE=0
START=1
APT=1
BOOT=1
WHEEL=""
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run|-n) DRY_RUN=1 ;;
        --uninstall) UNINSTALL=1 ;;
        --purge) PURGE=1 ;;
        --no-start) START=0 ;;
        --no-apt) APT=0 ;;
        --no-boot-config) BOOT=0 ;;
        --debian-only) APT_PACKAGES=("${APT_PACKAGES[@]/python3-picamera2}"); APT_PACKAGES=("${APT_PACKAGES[@]/python3-lgpio}") ;;
        --wheel) WHEEL=${2:?--wheel needs a file}; shift ;;
        --wheel=*) WHEEL=${1#--wheel=} ;;
        -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
[ "$PURGE" -eq 0 ] || [ "$UNINSTALL" -eq 1 ] || { echo "install.sh: --purge goes with --uninstall" >&2; exit 2; }

say() { printf '==> %s\n' "$*"; }
warn() { printf 'install.sh: warning: %s\n' "$*" >&2; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

# run CMD ARGS...: runs it, or prints it under --dry-run.
run() {
    if [ "$DRY_RUN" -eq 1 ]; then
        printf '+'
        printf ' %q' "$@"
        printf '\n'
    else
        "$@"
    fi
}

# append_line FILE LINE: adds LINE to FILE unless it is already there.
append_line() {
    local file=$1 line=$2
    if [ -f "$file" ] && grep -qxF "$line" "$file"; then
        return 0
    fi
    append_lines "$file" "$line"
}

# append_lines FILE LINE...: adds the lines at the end of FILE (on a line of their own, also
# when FILE does not end with a newline).
append_lines() {
    local file=$1 line
    shift
    if [ -s "$file" ] && [ -n "$(tail -c 1 "$file")" ]; then
        set -- "" "$@"
    fi
    for line in "$@"; do
        if [ "$DRY_RUN" -eq 1 ]; then
            printf '+ echo %q >> %q\n' "$line" "$file"
        else
            printf '%s\n' "$line" >> "$file"
        fi
    done
}

# config.txt applies a line only to the boards its section names ([pi4], [cm4] ..., up to the
# next section; [all] is every board). Raspberry Pi OS's own file ends with [cm4] or [cm5]
# sections, so what is added for every board goes under an [all] of its own.
#   boot_config_sections FILE LINE: the last section's header ("[all]" when there is none),
#     then "yes" if LINE is there for every board (before any section, or under [all]).
boot_config_sections() {
    awk -v want="$2" '
        BEGIN { section = "[all]" }
        { sub(/\r$/, "") }
        /^[[:space:]]*\[[^]]*\]/ {
            match($0, /\[[^]]*\]/)
            section = tolower(substr($0, RSTART, RLENGTH))
            next
        }
        section == "[all]" && $0 == want { found = 1 }
        END { print section; if (found) print "yes" }
    ' "$1"
}

# append_boot_config LINE...: adds the lines that BOOT_CONFIG lacks for every board.
append_boot_config() {
    local line last=""
    local -a missing=()
    for line in "$@"; do
        if [ -f "$BOOT_CONFIG" ] && [ "$(boot_config_sections "$BOOT_CONFIG" "$line" | sed -n 2p)" = yes ]; then
            continue
        fi
        missing+=("$line")
    done
    [ "${#missing[@]}" -gt 0 ] || return 0
    if [ -f "$BOOT_CONFIG" ]; then
        last=$(boot_config_sections "$BOOT_CONFIG" "" | head -n 1)
    fi
    if [ -n "$last" ] && [ "$last" != "[all]" ]; then
        missing=("[all]" "${missing[@]}")
    fi
    append_lines "$BOOT_CONFIG" "${missing[@]}"
}

# systemd running as init? (Not in a chroot such as the image build: enable works offline
# there, daemon-reload/start/stop do not.) A dry run shows every step.
systemd_running() {
    [ "$DRY_RUN" -eq 1 ] || [ -d /run/systemd/system ]
}

find_boot_config() {
    if [ -n "$BOOT_CONFIG" ]; then
        return
    fi
    local f
    for f in /boot/firmware/config.txt /boot/config.txt; do
        if [ -f "$f" ]; then
            BOOT_CONFIG=$f
            return
        fi
    done
    BOOT_CONFIG=/boot/firmware/config.txt
}

find_wheel() {
    if [ -n "$WHEEL" ]; then
        [ -f "$WHEEL" ] || [ "$DRY_RUN" -eq 1 ] || die "no such wheel: $WHEEL"
        return
    fi
    local found
    found=$( (find "$REPO/dist" "$PWD" -maxdepth 1 -name 'pushup_counter-*.whl' 2>/dev/null || true) | sort -V | tail -n 1)
    if [ -n "$found" ]; then
        WHEEL=$found
    elif [ "$DRY_RUN" -eq 1 ]; then
        WHEEL="$REPO/dist/pushup_counter-VERSION-py3-none-any.whl"
        warn "no wheel in $REPO/dist (build one: pip wheel --no-deps -w dist .); showing a placeholder"
    else
        die "no wheel: build one with 'pip wheel --no-deps -w dist .' in the source tree, or pass --wheel FILE"
    fi
}

check_system() {
    if [ "$DRY_RUN" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
        die "run as root (sudo $0 ...), or try --dry-run"
    fi
    local codename=""
    if [ -r /etc/os-release ]; then
        # shellcheck disable=SC1091
        codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    fi
    case "$codename" in
        bookworm|trixie) ;;
        *) warn "made for Raspberry Pi OS Bookworm or Trixie, this is '${codename:-unknown}'" ;;
    esac
    case "$(uname -m)" in
        aarch64) ;;
        *) warn "made for 64-bit Raspberry Pi OS (aarch64), this is $(uname -m) (ai-edge-litert has no 32-bit ARM wheel)" ;;
    esac
}

do_install() {
    find_wheel
    find_boot_config

    if [ "$APT" -eq 1 ]; then
        say "apt packages"
        local -a pkgs=()
        local p
        for p in "${APT_PACKAGES[@]}"; do
            if [ -n "$p" ]; then pkgs+=("$p"); fi
        done
        run apt-get update
        run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}"
    fi

    if [ "$BOOT" -eq 1 ]; then
        boot_config
    fi
    install_app
}

boot_config() {
    say "I2C and camera"
    local -a lines=()
    if command -v raspi-config >/dev/null; then
        run raspi-config nonint do_i2c 0
    else
        warn "no raspi-config: enabling I2C in $BOOT_CONFIG directly"
        lines+=("dtparam=i2c_arm=on")
        append_line "$MODULES_LOAD" "i2c-dev"
    fi
    # Raspberry Pi OS enables camera auto-detection by default; make sure nobody turned it off.
    if [ -f "$BOOT_CONFIG" ] && grep -q '^camera_auto_detect=0' "$BOOT_CONFIG"; then
        run sed -i 's/^camera_auto_detect=0/camera_auto_detect=1/' "$BOOT_CONFIG"
    else
        lines+=("camera_auto_detect=1")
    fi
    append_boot_config "${lines[@]}"
}

install_app() {
    say "user $SERVICE_USER"
    local g
    for g in "${GROUPS_NEEDED[@]}"; do
        getent group "$g" >/dev/null || run groupadd --system "$g"
    done
    if id "$SERVICE_USER" >/dev/null 2>&1; then
        run usermod --append --groups "$(IFS=,; echo "${GROUPS_NEEDED[*]}")" "$SERVICE_USER"
    else
        run useradd --system --user-group --no-create-home --home-dir "$STATE_DIR" \
            --shell /usr/sbin/nologin --groups "$(IFS=,; echo "${GROUPS_NEEDED[*]}")" "$SERVICE_USER"
    fi

    say "venv $VENV and the app"
    if [ ! -x "$VENV/bin/python" ]; then
        run mkdir -p "$PREFIX"
        # --system-site-packages: picamera2, libcamera, lgpio, numpy and scipy come from apt.
        run python3 -m venv --system-site-packages "$VENV"
    fi
    # Keep apt's numpy: scipy, simplejpeg and picamera2 from apt are built against it, and pip
    # would otherwise pull numpy 2 for ai-edge-litert's ml_dtypes on Bookworm (numpy 1.24).
    local constraints=$PREFIX/constraints.txt numpy_version
    if [ "$DRY_RUN" -eq 1 ]; then
        # shellcheck disable=SC2016  # printed, not run
        printf '+ echo numpy==$(python3 -c "import numpy; print(numpy.__version__)") > %q\n' "$constraints"
    else
        numpy_version=$("$VENV/bin/python" -c 'import numpy; print(numpy.__version__)') \
            || die "apt's python3-numpy is not importable from the venv"
        printf '# written by install.sh: keep the numpy that apt installed\nnumpy==%s\n' "$numpy_version" > "$constraints"
    fi
    # pip keeps an apt package that meets the wheel's requirement and replaces one that does
    # not: setup.cfg's pillow>=10.1 puts a newer Pillow in the venv over Bookworm's 9.4.
    run "$VENV/bin/pip" install --upgrade --constraint "$constraints" "${WHEEL}[pi]"
    # Same version number, new build: make sure the wheel's files replace the old ones.
    run "$VENV/bin/pip" install --force-reinstall --no-deps "$WHEEL"

    say "config $CONFIG"
    run install -d -m 0755 "$CONFIG_DIR"
    if [ -e "$CONFIG" ]; then
        say "keeping the existing $CONFIG"
    else
        run install -m 0644 "$HERE/config.toml" "$CONFIG"
    fi

    say "systemd unit"
    run install -m 0644 "$HERE/$UNIT" "$UNIT_PATH"
    # The unit's DeviceAllow=char-video4linux and char-media are looked up in /proc/devices
    # when it starts: the camera's modules must be loaded by then, or systemd silently leaves
    # the camera out and the daemon shows "camera error" until someone restarts it.
    local module
    for module in videodev mc; do
        append_line "$MODULES_LOAD" "$module"
    done
    if systemd_running; then  # and now, for the restart below
        run modprobe -a videodev mc || warn "cannot load videodev and mc: the camera may stay blocked until a reboot"
    fi
    # The long button press powers off through logind: polkit must let the service user.
    if [ -d /etc/polkit-1/rules.d ] || [ "$DRY_RUN" -eq 1 ]; then
        run install -m 0644 "$HERE/50-pushup-counter.rules" "$POLKIT_RULE"
    else
        warn "no polkit: the long button press cannot power the Pi off (apt-get install polkitd)"
    fi
    if systemd_running; then
        run systemctl daemon-reload
    fi
    run systemctl enable "$UNIT"
    if [ "$START" -eq 1 ] && systemd_running; then
        run systemctl restart "$UNIT"
        say "started; follow it with: journalctl -u pushup-counter -f"
    fi
    if [ "$BOOT" -eq 1 ] && [ ! -e /dev/i2c-1 ]; then
        say "I2C was just enabled: reboot once (sudo reboot) for the OLED to appear"
    fi
}

do_uninstall() {
    say "removing the service"
    if [ -e "$UNIT_PATH" ] || [ "$DRY_RUN" -eq 1 ]; then
        if systemd_running; then
            run systemctl disable --now "$UNIT"
        else
            run systemctl disable "$UNIT"
        fi
    fi
    run rm -f "$UNIT_PATH" "$POLKIT_RULE"
    if systemd_running; then
        run systemctl daemon-reload
        run systemctl reset-failed "$UNIT" 2>/dev/null || true
    fi
    say "removing $PREFIX"
    run rm -rf "$PREFIX"
    if [ "$PURGE" -eq 1 ]; then
        say "purging config, state and user"
        run rm -rf "$CONFIG_DIR" "$STATE_DIR"
        if id "$SERVICE_USER" >/dev/null 2>&1 || [ "$DRY_RUN" -eq 1 ]; then
            run userdel "$SERVICE_USER"
        fi
    else
        say "kept $CONFIG_DIR and $STATE_DIR (the saved count): --purge removes them"
    fi
    say "apt packages and the I2C/camera settings are left as they are"
}

check_system
if [ "$UNINSTALL" -eq 1 ]; then
    do_uninstall
else
    do_install
fi
