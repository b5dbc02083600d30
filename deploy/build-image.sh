#!/usr/bin/env bash
# Build a flashable SD-card image of the push-up counter appliance.
#
#   deploy/build-image.sh [--debian-only] [--suite bookworm] [--out DIR] [--wheel FILE]
#                         [--rootfs-only] [--extra-packages "pkg ..."]
#
#   --debian-only   only Debian's repositories (no camera stack); what this sandbox/CI can build
#   --rootfs-only   stop after the customised rootfs (--out/work/rootfs), make no image
#   --wheel FILE    the app's wheel (default: built from this checkout into --out/dist)
#
# Output (in --out, default build/deploy/): pushup-counter-<suite>-arm64.img, .img.bmap,
# .img.sha256. Nothing outside --out is written; the rootfs cache lives in --out/cache/.
#
# Repositories the build needs:
#   * Debian (main, non-free-firmware) for the base system, Debian's arm64 kernel
#     (linux-image-arm64), the Pi boot firmware (raspi-firmware), Wi-Fi firmware
#     (firmware-brcm80211), Python, numpy, scipy, python3-systemd, python3-av.
#   * The Raspberry Pi OS repository (RPI_MIRROR, suite = --suite, component main, signed by
#     raspberrypi-archive-keyring) for python3-picamera2, python3-libcamera, libcamera-ipa and
#     python3-lgpio. The camera also needs that repository's kernel (linux-image-rpi-v8) and
#     device-tree overlays: Debian's kernel has no Pi camera pipeline. The full build therefore
#     takes kernel and firmware from it too.
#   * PyPI, on the build host only, for the app's wheel dependencies (ai-edge-litert, gpiozero,
#     luma.oled ...), downloaded for aarch64 and installed offline into the image's venv.
# --debian-only skips every Raspberry Pi OS package: the image builds from Debian alone (and
# boots on a Pi with Debian's kernel), but it has no camera stack; it is what CI can build.
#
# Image layout (MBR, so every Pi model's firmware can read it):
#   p1 FAT32 "RASPIFIRM" 256 MiB  -> /boot/firmware (kernel, dtbs, config.txt, cmdline.txt,
#                                    pushup-counter.txt: the owner's boot settings)
#   p2 ext4  "RASPIROOT"          -> /, mounted read-only, with a tmpfs overlay (overlayroot)
#   p3 ext4  "PUSHUPDATA" 64 MiB  -> /data (grown to fill the card at first boot); holds
#                                    /data/pushup-counter (bind-mounted on
#                                    /var/lib/pushup-counter) and /data/ssh (host keys)
#
# Needs root, mmdebstrap, qemu-user-static with binfmt_misc registered (arm64 maintainer
# scripts and the venv run under emulation), mke2fs, mkfs.vfat, mtools, sfdisk, bmaptool.
# No loop devices: file systems are made with `mke2fs -d` and `mkfs.vfat` + `mcopy`.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)

SUITE=bookworm
OUT="$REPO/build/deploy"
WHEEL=""
DEBIAN_ONLY=0
ROOTFS_ONLY=0
EXTRA_PACKAGES=""
RPI_MIRROR=${RPI_MIRROR:-http://archive.raspberrypi.com/debian}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-}          # empty: mmdebstrap's default Debian mirror
BOOT_MIB=256
DATA_MIB=64
# The end of the kernel command line (Debian's raspi-firmware appends it to the cmdline.txt it
# writes). It ends with `ro`: the last ro/rw decides how the kernel and the initramfs mount the
# root, and Debian's cmdline.txt has `rw` earlier. With ro, the ext4 under the overlay stays
# read-only for the box's life (overlayroot mounts the overlay itself read-write).
EXTRA_CMDLINE="overlayroot=tmpfs:recurse=0 fsck.repair=yes quiet ro"

usage() {
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --debian-only) DEBIAN_ONLY=1 ;;
        --rootfs-only) ROOTFS_ONLY=1 ;;
        --suite) SUITE=$2; shift ;;
        --out) OUT=$2; shift ;;
        --wheel) WHEEL=$2; shift ;;
        --extra-packages) EXTRA_PACKAGES=$2; shift ;;
        -h|--help) usage 0 ;;
        *) echo "build-image: unknown argument: $1" >&2; usage 2 ;;
    esac
    shift
done

log() { printf '[build-image %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { printf 'build-image: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (file ownership inside the image)"
for tool in mmdebstrap arch-test mke2fs mkfs.vfat mcopy sfdisk bmaptool sha256sum python3; do
    command -v "$tool" >/dev/null || die "missing tool: $tool (apt-get install mmdebstrap arch-test e2fsprogs dosfstools mtools fdisk bmap-tools qemu-user-static)"
done
if [ "$(uname -m)" != aarch64 ] && ! grep -qs '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64; then
    die "no arm64 binfmt handler: apt-get install qemu-user-static binfmt-support; mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; update-binfmts --enable qemu-aarch64"
fi

mkdir -p "$OUT/cache"
OUT=$(cd "$OUT" && pwd)
WORK="$OUT/work"
ROOT="$WORK/rootfs"
# Not `$([ ... ] && echo ...)`: under set -e a false test there ends the script, silently.
if [ "$DEBIAN_ONLY" -eq 1 ]; then
    IMG_NAME="pushup-counter-$SUITE-arm64-debian-only.img"
else
    IMG_NAME="pushup-counter-$SUITE-arm64.img"
fi
log "building $OUT/$IMG_NAME"

# --- packages -------------------------------------------------------------------------------
# From Debian.
PKGS_DEBIAN=(
    systemd-sysv udev kmod dbus systemd-timesyncd systemd-resolved polkitd
    initramfs-tools overlayroot
    e2fsprogs dosfstools fdisk procps
    wpasupplicant iproute2 openssh-server
    i2c-tools
    python3 python3-venv python3-numpy python3-scipy python3-systemd python3-pil python3-av
)
# Debian's kernel and Pi firmware (debian-only build).
PKGS_DEBIAN_BOOT=(linux-image-arm64 raspi-firmware firmware-brcm80211)
# From the Raspberry Pi OS repository (full build): kernel with the camera pipeline, firmware,
# libcamera, picamera2, lgpio.
PKGS_RPI=(
    raspberrypi-archive-keyring raspi-firmware linux-image-rpi-v8 linux-image-rpi-2712
    firmware-brcm80211 python3-picamera2 python3-libcamera libcamera-ipa python3-lgpio
)

# --- stage 1: base rootfs (cached) ----------------------------------------------------------
base_rootfs() {
    local pkgs key tarball
    if [ "$DEBIAN_ONLY" -eq 1 ]; then
        pkgs="${PKGS_DEBIAN[*]} ${PKGS_DEBIAN_BOOT[*]} $EXTRA_PACKAGES"
    else
        pkgs="${PKGS_DEBIAN[*]} ${PKGS_RPI[*]} $EXTRA_PACKAGES"
    fi
    key=$(printf '%s\n' "$SUITE" "$DEBIAN_ONLY" "$pkgs" "$RPI_MIRROR" "$DEBIAN_MIRROR" | sha256sum | cut -c1-12)
    tarball="$OUT/cache/base-$SUITE-arm64-$key.tar"
    if [ -s "$tarball" ]; then
        log "base rootfs: cached $tarball"
    else
        log "base rootfs: mmdebstrap $SUITE arm64 (slow under emulation: maintainer scripts and initramfs run in qemu)"
        # shellcheck disable=SC2054,SC2016  # commas are mmdebstrap's; the hooks expand $1
        local -a args=(--arch=arm64 --variant=minbase --format=tar
            --components=main,non-free-firmware
            --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
            --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*'
            --dpkgopt='path-include=/usr/share/locale/locale.alias'
            --aptopt='Apt::Install-Recommends "false"'
            --dpkgopt='force-confold' --dpkgopt='force-confdef'
            --include="$(echo "$pkgs" | tr -s ' ' ',' | sed 's/^,//; s/,$//')"
            # raspi-firmware writes cmdline.txt and config.txt from these when the kernel is
            # installed; they must exist before it is.
            --essential-hook='mkdir -p "$1/etc/default" "$1/boot/firmware"'
            --essential-hook='printf "%s\n" "ROOTPART=LABEL=RASPIROOT" "CONSOLES=\"tty0\"" > "$1/etc/default/raspi-firmware"'
            --essential-hook="printf '%s\\n' '$EXTRA_CMDLINE' > \"\$1/etc/default/raspi-extra-cmdline\""
            --essential-hook="printf '%s\n' 'dtparam=i2c_arm=on' 'camera_auto_detect=1' 'display_auto_detect=1' > \"\$1/etc/default/raspi-firmware-custom\""
            # Build the initrd once (the kernel's postinst), not again for every initramfs
            # trigger: mkinitramfs takes ~20 min under emulation. Re-enabled in stage 3.
            --essential-hook='mkdir -p "$1/etc/initramfs-tools" && printf "%s\n" "update_initramfs=no" "backup_initramfs=no" > "$1/etc/initramfs-tools/update-initramfs.conf"'
        )
        if [ "$DEBIAN_ONLY" -eq 0 ]; then
            # The Pi repository is signed by a key that only it ships: trust it for the bootstrap
            # through [trusted=yes] once, then raspberrypi-archive-keyring takes over.
            args+=(--setup-hook="mkdir -p \"\$1/etc/apt/sources.list.d\"; echo 'deb [trusted=yes] $RPI_MIRROR $SUITE main' > \"\$1/etc/apt/sources.list.d/raspi.list\"")
            args+=(--customize-hook="echo 'deb [signed-by=/usr/share/keyrings/raspberrypi-archive-keyring.gpg] $RPI_MIRROR $SUITE main' > \"\$1/etc/apt/sources.list.d/raspi.list\"")
        fi
        # The tarball appears only when complete (a killed build leaves no half cache).
        # shellcheck disable=SC2086  # DEBIAN_MIRROR is empty or one word
        mmdebstrap "${args[@]}" "$SUITE" "$tarball.part" $DEBIAN_MIRROR
        mv "$tarball.part" "$tarball"
    fi
    BASE_TARBALL=$tarball
}


# --- stage 2: the app's wheel and its aarch64 dependencies (host side, from PyPI) ------------
HOST_PIP=${HOST_PIP:-}
host_pip() {
    if [ -n "$HOST_PIP" ]; then
        "$HOST_PIP" "$@"
    elif [ -x "$REPO/.venv/bin/pip" ]; then
        "$REPO/.venv/bin/pip" "$@"
    else
        python3 -m pip "$@"
    fi
}

app_wheel() {
    if [ -z "$WHEEL" ]; then
        rm -rf "$OUT/dist"
        log "building the app wheel from $REPO"
        host_pip wheel --quiet --no-deps -w "$OUT/dist" "$REPO"
        WHEEL=$(ls "$OUT"/dist/pushup_counter-*.whl)
    fi
    [ -f "$WHEEL" ] || die "no wheel: $WHEEL"
    WHEEL=$(cd "$(dirname "$WHEEL")" && pwd)/$(basename "$WHEEL")
}

# Wheels for the image's Python (cp311 on Bookworm, cp313 on Trixie), resolved against the
# numpy that apt put in the image: the venv must keep it (see install.sh).
wheelhouse() {
    local pyver=$1 numpy_version=$2 dir
    dir="$OUT/cache/wheels-$SUITE-cp${pyver/./}-numpy$numpy_version"
    mkdir -p "$dir"
    printf 'numpy==%s\n' "$numpy_version" > "$OUT/cache/constraints.txt"
    log "downloading aarch64 wheels for CPython $pyver into $dir"
    host_pip download --quiet --disable-pip-version-check -d "$dir" --only-binary=:all: \
        --platform manylinux2014_aarch64 --platform manylinux_2_17_aarch64 \
        --platform manylinux_2_27_aarch64 --platform manylinux_2_28_aarch64 \
        --platform manylinux_2_34_aarch64 \
        --python-version "$pyver" --implementation cp --abi "cp${pyver/./}" \
        --constraint "$OUT/cache/constraints.txt" "${WHEEL}[pi]"
    WHEELHOUSE=$dir
}

# --- chroot helpers ---------------------------------------------------------------------------
MOUNTED=()
chroot_up() {
    mount -t proc proc "$ROOT/proc"; MOUNTED+=("$ROOT/proc")
    # ai-edge-litert (XNNPACK's cpuinfo) crashes under qemu-user on the host's /proc/cpuinfo.
    if [ "$(uname -m)" != aarch64 ]; then
        mount --bind "$HERE/testdata/cpuinfo-cortex-a72" "$ROOT/proc/cpuinfo"; MOUNTED+=("$ROOT/proc/cpuinfo")
    fi
    mount -t sysfs sysfs "$ROOT/sys"; MOUNTED+=("$ROOT/sys")
    mount --bind /dev "$ROOT/dev"; MOUNTED+=("$ROOT/dev")
}
chroot_down() {
    local i
    for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
        umount "${MOUNTED[i]}" 2>/dev/null || umount -l "${MOUNTED[i]}" || true
    done
    MOUNTED=()
}
trap chroot_down EXIT

# --- stage 3: customise the rootfs ------------------------------------------------------------
customise() {
    log "unpacking the base rootfs into $ROOT"
    rm -rf "$WORK"
    mkdir -p "$ROOT"
    tar -C "$ROOT" --numeric-owner --xattrs --xattrs-include='*' -xpf "$BASE_TARBALL"
    chroot_up

    local pyver numpy_version
    pyver=$(chroot "$ROOT" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    numpy_version=$(chroot "$ROOT" python3 -c 'import numpy; print(numpy.__version__)')
    wheelhouse "$pyver" "$numpy_version"

    log "installing the app with deploy/install.sh inside the rootfs (offline, from the wheelhouse)"
    local stage="$ROOT/tmp/pushup-install"
    mkdir -p "$stage/deploy" "$stage/wheels"
    cp "$HERE"/install.sh "$HERE"/pushup-counter.service "$HERE"/config.toml "$HERE"/50-pushup-counter.rules "$stage/deploy/"
    cp "$WHEELHOUSE"/*.whl "$stage/wheels/"
    cp "$WHEEL" "$stage/"
    local -a install_args=(--wheel "/tmp/pushup-install/$(basename "$WHEEL")" --no-apt --no-boot-config --no-start)
    if [ "$DEBIAN_ONLY" -eq 1 ]; then
        install_args+=(--debian-only)
    fi
    chroot "$ROOT" env PIP_NO_INDEX=1 PIP_FIND_LINKS=/tmp/pushup-install/wheels PIP_DISABLE_PIP_VERSION_CHECK=1 \
        bash /tmp/pushup-install/deploy/install.sh "${install_args[@]}"
    rm -rf "$stage"
    chroot_down
    sed -i 's/^update_initramfs=no/update_initramfs=yes/' "$ROOT/etc/initramfs-tools/update-initramfs.conf"

    log "appliance settings: read-only root, data partition, boot settings, SSH off, locked accounts"
    local f
    # Mount points, the fstab (read-only root under a tmpfs overlay; /data the one writable
    # partition, nofail) and the daemon's drop-in (its count on /data, and it starts without it).
    mkdir -p "$ROOT/data" "$ROOT/var/lib/pushup-counter" "$ROOT/boot/firmware"
    install -m 0644 "$HERE/image/fstab" "$ROOT/etc/fstab"
    mkdir -p "$ROOT/etc/systemd/system/pushup-counter.service.d"
    install -m 0644 "$HERE/image/pushup-counter-image.conf" "$ROOT/etc/systemd/system/pushup-counter.service.d/image.conf"

    # Devices: group access like Raspberry Pi OS gives it, and /dev/i2c-* at boot. (install.sh
    # above wrote the camera's videodev and mc to modules-load.d: the unit's DeviceAllow needs them.)
    cp "$HERE/image/60-pushup-counter.rules" "$ROOT/etc/udev/rules.d/"
    echo i2c-dev > "$ROOT/etc/modules-load.d/i2c-dev.conf"

    # Boot settings, growing the data partition, networking.
    install -m 0755 "$HERE/image/pushup-boot-settings" "$ROOT/usr/local/sbin/pushup-boot-settings"
    install -m 0755 "$HERE/image/pushup-grow-data" "$ROOT/usr/local/sbin/pushup-grow-data"
    for f in pushup-boot-settings.service pushup-grow-data.service; do
        install -m 0644 "$HERE/image/$f" "$ROOT/etc/systemd/system/$f"
    done
    mkdir -p "$ROOT/etc/systemd/network"
    install -m 0644 "$HERE/image/20-wired.network" "$HERE/image/25-wireless.network" "$ROOT/etc/systemd/network/"
    systemctl --root="$ROOT" enable pushup-boot-settings.service pushup-grow-data.service systemd-networkd.service \
        systemd-resolved.service
    # DNS from DHCP through systemd-resolved (the clock's NTP servers are names). mmdebstrap
    # leaves the build machine's resolv.conf behind, which means nothing on the owner's network.
    ln -sfn ../run/systemd/resolve/stub-resolv.conf "$ROOT/etc/resolv.conf"
    echo pushup-counter > "$ROOT/etc/hostname"
    printf '127.0.0.1\tlocalhost\n127.0.1.1\tpushup-counter\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' > "$ROOT/etc/hosts"

    # SSH: off, no host keys baked in (made on the data partition when a key is given).
    rm -f "$ROOT"/etc/ssh/ssh_host_*
    systemctl --root="$ROOT" disable ssh.service >/dev/null 2>&1 || true
    systemctl --root="$ROOT" mask ssh.socket >/dev/null 2>&1 || true
    install -m 0644 "$HERE/image/sshd-pushup.conf" "$ROOT/etc/ssh/sshd_config.d/pushup.conf"

    # No password anywhere: root's is '*' (no password can match; a key given on the boot
    # partition still logs in over SSH), every other account keeps its locked '*' or '!'.
    sed -i 's/^root:[^:]*:/root:*:/' "$ROOT/etc/shadow"
    if awk -F: '$2 != "*" && $2 !~ /^!/ { bad = 1; print "build-image: account " $1 " has a password" > "/dev/stderr" } END { exit bad }' "$ROOT/etc/shadow"; then :; else die "an account has a password"; fi

    # No machine-id baked in (every card would share it): systemd makes one at every boot, kept
    # in the RAM overlay, so it changes at every boot. Nothing may rely on it staying: the
    # .network files take the DHCP client identifier from the MAC address, not from it.
    : > "$ROOT/etc/machine-id"
    rm -f "$ROOT/var/lib/dbus/machine-id"
    # With an empty machine-id every boot is a "first boot", and at a first boot systemd
    # enables every unit its presets say to (Debian's default: all), ssh.service among them:
    # sshd would start at every boot once host keys exist, key or no key. The units enabled
    # above are all the image runs.
    mkdir -p "$ROOT/etc/systemd/system-preset"
    printf '%s\n' "# Push-up counter image: first-boot presets enable nothing (see build-image.sh)." "disable *" \
        > "$ROOT/etc/systemd/system-preset/00-pushup-counter.preset"

    # Boot partition: firmware settings and the owner's settings file. Debian's raspi-firmware
    # writes config.txt and cmdline.txt from /etc/default/raspi-* (set in stage 1); Raspberry
    # Pi OS's does not, so write them when missing.
    if [ ! -f "$ROOT/boot/firmware/config.txt" ]; then
        cat > "$ROOT/boot/firmware/config.txt" <<'CONFIG'
# Push-up counter image (Raspberry Pi OS kernel)
arm_64bit=1
auto_initramfs=1
dtparam=i2c_arm=on
camera_auto_detect=1
display_auto_detect=1
disable_overscan=1
CONFIG
    fi
    if [ ! -f "$ROOT/boot/firmware/cmdline.txt" ]; then
        echo "console=tty1 root=LABEL=RASPIROOT rootfstype=ext4 rootwait $EXTRA_CMDLINE" \
            > "$ROOT/boot/firmware/cmdline.txt"
    fi
    # A read-only root whatever wrote cmdline.txt (the cached base rootfs may predate the `ro`
    # in EXTRA_CMDLINE): the last ro/rw on the line wins. Kernel upgrades rewrite it from
    # raspi-extra-cmdline.
    printf '%s\n' "$EXTRA_CMDLINE" > "$ROOT/etc/default/raspi-extra-cmdline"
    if [ "$(tr -s '[:space:]' '\n' < "$ROOT/boot/firmware/cmdline.txt" | grep -xE 'ro|rw' | tail -n 1)" != ro ]; then
        sed -i '1s/[[:space:]]*$/ ro/' "$ROOT/boot/firmware/cmdline.txt"
    fi
    log "cmdline.txt: $(head -n 1 "$ROOT/boot/firmware/cmdline.txt")"
    install -m 0644 "$HERE/image/pushup-counter.txt" "$ROOT/boot/firmware/pushup-counter.txt"
    # Every appliance setting with its default (the counter's tuning only named), to copy into
    # pushup-counter.toml (see the .txt).
    install -m 0644 "$HERE/config.toml" "$ROOT/boot/firmware/pushup-counter.toml.example"
    rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/tmp/* "$ROOT"/var/log/*.log
}

# --- stage 4: the image -----------------------------------------------------------------------
assemble() {
    local img="$OUT/$IMG_NAME" boot_dir="$WORK/bootfs" data_dir="$WORK/datafs"
    local root_mib start_boot=4 uid gid

    log "boot partition (FAT32, $BOOT_MIB MiB)"
    rm -rf "$boot_dir" && mkdir -p "$boot_dir"
    # Its files go on the FAT partition; the rootfs keeps an empty mount point.
    cp -a "$ROOT/boot/firmware/." "$boot_dir/"
    find "$ROOT/boot/firmware" -mindepth 1 -delete
    [ -e "$boot_dir/config.txt" ] || die "no config.txt in /boot/firmware: did raspi-firmware install?"
    rm -f "$WORK/boot.vfat"
    mkfs.vfat -F 32 -n RASPIFIRM -C "$WORK/boot.vfat" $((BOOT_MIB * 1024)) >/dev/null
    mcopy -s -p -i "$WORK/boot.vfat" "$boot_dir"/* ::/

    log "root partition (ext4 from the rootfs, no loop device: mke2fs -d)"
    root_mib=$(du -s --block-size=1M "$ROOT" | cut -f1)
    root_mib=$((root_mib * 120 / 100 + 128))
    rm -f "$WORK/root.ext4"
    mke2fs -q -t ext4 -L RASPIROOT -m 0 -d "$ROOT" "$WORK/root.ext4" "${root_mib}M"

    log "data partition (ext4, $DATA_MIB MiB, grows to fill the card at first boot)"
    uid=$(awk -F: '$1 == "pushup" { print $3 }' "$ROOT/etc/passwd")
    gid=$(awk -F: '$1 == "pushup" { print $4 }' "$ROOT/etc/passwd")
    [ -n "$uid" ] || die "no pushup user in the rootfs"
    rm -rf "$data_dir" && mkdir -p "$data_dir/pushup-counter" "$data_dir/ssh"
    chown "$uid:$gid" "$data_dir/pushup-counter" && chmod 0700 "$data_dir/pushup-counter" "$data_dir/ssh"
    rm -f "$WORK/data.ext4"
    mke2fs -q -t ext4 -L PUSHUPDATA -d "$data_dir" "$WORK/data.ext4" "${DATA_MIB}M"

    log "partition table and image $img"
    local boot_start=$((start_boot * 2048)) boot_sectors=$((BOOT_MIB * 2048))
    local root_start=$((boot_start + boot_sectors)) root_sectors=$((root_mib * 2048))
    local data_start=$((root_start + root_sectors)) data_sectors=$((DATA_MIB * 2048))
    local total_mib=$(((data_start + data_sectors) / 2048 + 1))
    rm -f "$img" "$img.bmap" "$img.sha256"
    truncate -s "${total_mib}M" "$img"
    sfdisk --quiet "$img" <<TABLE
label: dos
label-id: 0x5075736e
unit: sectors

start=$boot_start, size=$boot_sectors, type=c, bootable
start=$root_start, size=$root_sectors, type=83
start=$data_start, size=$data_sectors, type=83
TABLE
    dd if="$WORK/boot.vfat" of="$img" bs=1M seek="$start_boot" conv=notrunc,sparse status=none
    dd if="$WORK/root.ext4" of="$img" bs=512 seek="$root_start" conv=notrunc,sparse status=none
    dd if="$WORK/data.ext4" of="$img" bs=512 seek="$data_start" conv=notrunc,sparse status=none
    rm -f "$WORK/boot.vfat" "$WORK/root.ext4" "$WORK/data.ext4"

    log "bmap and sha256"
    bmaptool create -o "$img.bmap" "$img"
    (cd "$OUT" && sha256sum "$IMG_NAME" > "$IMG_NAME.sha256")
    log "done: $img ($(du -h --apparent-size "$img" | cut -f1), $(du -h "$img" | cut -f1) used); flash with: deploy/flash.sh $img /dev/sdX"
}

# Everything above only defines; bash reads this function whole before running it, so the
# script may be edited while a build runs.
main() {
    START_TIME=$(date +%s)
    base_rootfs
    if [ "${BUILD_IMAGE_STAGE:-}" = base ]; then
        log "stopping after the base rootfs (BUILD_IMAGE_STAGE=base)"
        return 0
    fi
    app_wheel
    customise
    if [ "$ROOTFS_ONLY" -eq 1 ]; then
        log "rootfs ready in $ROOT (--rootfs-only) after $(($(date +%s) - START_TIME)) s"
        return 0
    fi
    assemble
    log "image built in $(($(date +%s) - START_TIME)) s"
}

main
exit 0
