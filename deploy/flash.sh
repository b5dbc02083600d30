#!/usr/bin/env bash
# Write a push-up counter image to an SD card and verify it by reading it back.
#
#   deploy/flash.sh [--yes] [--force] IMAGE DEVICE
#
#   --yes     do not ask before writing
#   --force   also write to a disk that does not report itself removable
#
# Refuses: the disk holding / (always), a disk with a mounted or swapped-on partition (always),
# a partition instead of a whole disk (always), a disk smaller than the image (always), a
# non-removable disk (unless --force; SD cards in built-in mmc readers count as removable).
# Writes with bmaptool when IMAGE.bmap sits beside IMAGE, else with dd (conv=fsync); syncs;
# then reads back and verifies: the whole image length against IMAGE's sha256 (IMAGE.sha256
# when present), or, after a bmap write (which skips the image's holes), every mapped range
# against the checksums in the bmap.
#
# DEVICE may also be a regular file (written like a disk, without the disk checks): handy for
# tests and for copying an image. For tests the system views can be replaced:
#   FLASH_SYSFS_ROOT   (default /sys)          block/NAME/{removable,size,NAME1/...}
#   FLASH_PROC_MOUNTS  (default /proc/mounts)
#   FLASH_PROC_SWAPS   (default /proc/swaps)
#   FLASH_ROOT_DEVICE  name of the block device holding / (default: from the mounts and stat /)
#   FLASH_ASSUME_BLOCK=1  treat a regular-file DEVICE as the block device named by its basename
set -euo pipefail

SYSFS=${FLASH_SYSFS_ROOT:-/sys}
MOUNTS=${FLASH_PROC_MOUNTS:-/proc/mounts}
SWAPS=${FLASH_PROC_SWAPS:-/proc/swaps}

YES=0
FORCE=0
ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        -y|--yes) YES=1 ;;
        -f|--force) FORCE=1 ;;
        -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        --) shift; ARGS+=("$@"); break ;;
        -*) echo "flash: unknown option: $1" >&2; exit 2 ;;
        *) ARGS+=("$1") ;;
    esac
    shift
done
[ "${#ARGS[@]}" -eq 2 ] || { echo "usage: flash.sh [--yes] [--force] IMAGE DEVICE" >&2; exit 2; }
IMAGE=${ARGS[0]}
DEVICE=${ARGS[1]}

die() { printf 'flash: refusing: %s\n' "$*" >&2; exit 1; }
fail() { printf 'flash: %s\n' "$*" >&2; exit 1; }
log() { printf 'flash: %s\n' "$*" >&2; }

[ -f "$IMAGE" ] || fail "no such image: $IMAGE"
IMAGE_SIZE=$(stat -c %s "$IMAGE")
[ "$IMAGE_SIZE" -gt 0 ] || fail "empty image: $IMAGE"
BMAP=""
if [ -f "$IMAGE.bmap" ]; then
    if command -v bmaptool >/dev/null; then
        BMAP="$IMAGE.bmap"
    else
        log "$IMAGE.bmap present but bmaptool is not installed: writing the whole image with dd"
    fi
fi

# Name of the whole disk that block device NAME (a disk, a partition or a device-mapper node)
# sits on; several names for a device-mapper node over several disks.
disks_of() {
    local name=$1 d slave
    if [ -d "$SYSFS/block/$name/slaves" ] && [ -n "$(ls -A "$SYSFS/block/$name/slaves" 2>/dev/null)" ]; then
        for slave in "$SYSFS/block/$name/slaves"/*; do
            disks_of "$(basename "$slave")"
        done
        return
    fi
    if [ -d "$SYSFS/block/$name" ]; then
        echo "$name"
        return
    fi
    for d in "$SYSFS"/block/*/; do
        if [ -d "$d$name" ]; then
            basename "$d"
            return
        fi
    done
}

# Block device name behind a mount source such as /dev/sda1, /dev/disk/by-uuid/..., /dev/mapper/x.
dev_name() {
    local src=$1
    case "$src" in
        /dev/*) basename "$(readlink -f "$src" 2>/dev/null || echo "$src")" ;;
        *) return 0 ;;
    esac
}

if [ -b "$DEVICE" ] || [ "${FLASH_ASSUME_BLOCK:-0}" = 1 ]; then
    TARGET_KIND="block"
    NAME=$(basename "$(readlink -f "$DEVICE")")
    [ -d "$SYSFS/block/$NAME" ] || {
        [ -n "$(disks_of "$NAME")" ] && die "$DEVICE is a partition of /dev/$(disks_of "$NAME"): give the whole disk"
        die "$DEVICE: no $SYSFS/block/$NAME (not a whole disk?)"
    }

    # 1. the system disk
    ROOT_NAMES=()
    if [ -n "${FLASH_ROOT_DEVICE:-}" ]; then
        ROOT_NAMES+=("$FLASH_ROOT_DEVICE")
    else
        src=$(awk '$2 == "/" { print $1 }' "$MOUNTS" | tail -n 1)
        [ -n "$src" ] && ROOT_NAMES+=("$(dev_name "$src")")
        devno=$(stat -c '%Hd:%Ld' / 2>/dev/null || true)
        if [ -n "$devno" ] && [ -e "$SYSFS/dev/block/$devno" ]; then
            ROOT_NAMES+=("$(basename "$(readlink -f "$SYSFS/dev/block/$devno")")")
        fi
    fi
    for rn in "${ROOT_NAMES[@]}"; do
        [ -n "$rn" ] || continue
        for disk in $(disks_of "$rn"); do
            [ "$disk" = "$NAME" ] && die "$DEVICE is the system disk (it holds /)"
        done
    done

    # 2. anything mounted or swapped on from it
    while read -r src mnt _; do
        n=$(dev_name "$src")
        [ -n "$n" ] || continue
        for disk in $(disks_of "$n"); do
            [ "$disk" = "$NAME" ] && die "$DEVICE is in use: $src is mounted on $mnt (unmount it first)"
        done
    done < "$MOUNTS"
    if [ -r "$SWAPS" ]; then
        while read -r src _; do
            n=$(dev_name "$src")
            [ -n "$n" ] || continue
            for disk in $(disks_of "$n"); do
                [ "$disk" = "$NAME" ] && die "$DEVICE is in use: $src is swap (swapoff it first)"
            done
        done < <(tail -n +2 "$SWAPS")
    fi

    # 3. removable?
    removable=$(cat "$SYSFS/block/$NAME/removable" 2>/dev/null || echo 0)
    mmc_type=$(cat "$SYSFS/block/$NAME/device/type" 2>/dev/null || true)
    if [ "$removable" != 1 ] && [ "$mmc_type" != SD ]; then
        [ "$FORCE" -eq 1 ] || die "$DEVICE is not a removable disk ($SYSFS/block/$NAME/removable = $removable); use --force if you are sure"
        log "warning: $DEVICE is not removable; going on because of --force"
    fi

    # 4. big enough?
    sectors=$(cat "$SYSFS/block/$NAME/size" 2>/dev/null || echo 0)
    DEVICE_SIZE=$((sectors * 512))
    if [ "$DEVICE_SIZE" -gt 0 ] && [ "$DEVICE_SIZE" -lt "$IMAGE_SIZE" ]; then
        die "$DEVICE ($DEVICE_SIZE bytes) is smaller than $IMAGE ($IMAGE_SIZE bytes)"
    fi
    model=$(cat "$SYSFS/block/$NAME/device/model" 2>/dev/null || true)
    DESC="$DEVICE (${model:+$model, }$((DEVICE_SIZE / 1000000)) MB)"
elif [ -e "$DEVICE" ] && [ ! -f "$DEVICE" ]; then
    die "$DEVICE is neither a block device nor a regular file"
else
    TARGET_KIND="file"
    DESC="$DEVICE (regular file)"
fi

if [ "$YES" -ne 1 ]; then
    [ -t 0 ] || die "not asking on a non-interactive stdin: pass --yes to write $IMAGE to $DESC"
    printf 'Write %s to %s?\nEverything on it will be lost. Type yes to go on: ' "$IMAGE" "$DESC" >&2
    read -r answer
    [ "$answer" = yes ] || { echo "flash: not written" >&2; exit 1; }
fi

if [ -n "$BMAP" ]; then
    log "writing $IMAGE to $DEVICE with bmaptool ($BMAP)"
    bmaptool copy --bmap "$BMAP" "$IMAGE" "$DEVICE"
else
    log "writing $IMAGE to $DEVICE with dd"
    if [ -b "$DEVICE" ]; then
        dd if="$IMAGE" of="$DEVICE" bs=4M conv=fsync,notrunc oflag=direct status=progress
    else
        dd if="$IMAGE" of="$DEVICE" bs=4M conv=fsync status=none
    fi
fi
sync
if [ "$TARGET_KIND" = block ] && [ -b "$DEVICE" ] && command -v blockdev >/dev/null; then
    blockdev --flushbufs "$DEVICE" || true      # read back from the card, not the page cache
fi

log "verifying by reading back"
if [ -n "$BMAP" ]; then
    python3 - "$BMAP" "$DEVICE" <<'EOF'
import hashlib, sys, xml.etree.ElementTree as ET
bmap, device = sys.argv[1], sys.argv[2]
root = ET.parse(bmap).getroot()
block = int(root.findtext("BlockSize"))
kind = (root.findtext("ChecksumType") or "sha256").strip()
ranges = root.find("BlockMap").findall("Range")
with open(device, "rb") as dev:
    for r in ranges:
        first, _, last = r.text.strip().partition("-")
        first = int(first); last = int(last or first)
        dev.seek(first * block)
        h = hashlib.new(kind)
        left = (last - first + 1) * block
        while left:
            chunk = dev.read(min(left, 4 << 20))
            if not chunk:
                sys.exit(f"flash: VERIFY FAILED: {device} ends inside blocks {first}-{last}")
            h.update(chunk); left -= len(chunk)
        if h.hexdigest() != r.get("chksum"):
            sys.exit(f"flash: VERIFY FAILED: blocks {first}-{last} differ from the image")
print(f"flash: verified {len(ranges)} mapped ranges against {bmap}", file=sys.stderr)
EOF
fi
if [ -z "$BMAP" ] || [ "$TARGET_KIND" = file ]; then
    if [ -f "$IMAGE.sha256" ]; then
        want=$(awk '{ print $1; exit }' "$IMAGE.sha256")
    else
        want=$(sha256sum "$IMAGE" | awk '{ print $1 }')
    fi
    got=$(head -c "$IMAGE_SIZE" "$DEVICE" | sha256sum | awk '{ print $1 }')
    [ "$got" = "$want" ] || fail "VERIFY FAILED: the first $IMAGE_SIZE bytes of $DEVICE have sha256 $got, the image $want"
    log "verified sha256 of the first $IMAGE_SIZE bytes: $got"
fi
log "done: $DESC is ready; remove it and put it in the Pi"
