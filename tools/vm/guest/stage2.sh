#!/bin/sh
# Stage 2 of the kmesh-ts test VM, running in the host's / (read-only 9p + tmpfs overlay) as root. Mounts what the
# tests need, mounts the result share at /run/kmesh-vm, runs its job.sh and writes the exit code, then powers off.
# Facts: docs/toolchain.md ("A second kernel").
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /run/kmesh-vm /sys/fs/bpf /sys/fs/cgroup
mount -t 9p -o trans=virtio,version=9p2000.L,cache=none,msize=512000 results /run/kmesh-vm
cut -d' ' -f1 /proc/uptime > /run/kmesh-vm/booted
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tmpfs tmpfs /dev/shm 2>/dev/null
[ -e /dev/pts ] || mkdir -p /dev/pts; mount -t devpts devpts /dev/pts 2>/dev/null
ln -sf /proc/self/fd /dev/fd 2>/dev/null
# Modules of the Debian kernel live in the cache; busybox modprobe reads the modules.dep that busybox depmod wrote,
# also when the kernel loads on demand (esp4, xfrm_user, rfc4106(gcm(aes)), cls_bpf …).
ver=$(uname -r)
mkdir -p /lib/modules/$ver /run/kmesh-vm-bin
mount --bind "$(cat /run/kmesh-vm/modules-dir)" /lib/modules/$ver
ln -s /bin/busybox /run/kmesh-vm-bin/modprobe
echo /run/kmesh-vm-bin/modprobe > /proc/sys/kernel/modprobe
ip link set lo up
hostname kmesh-vm
sh /run/kmesh-vm/job.sh > /run/kmesh-vm/stdout 2> /run/kmesh-vm/stderr < /dev/null
echo $? > /run/kmesh-vm/rc.tmp
cut -d' ' -f1 /proc/uptime > /run/kmesh-vm/finished
mv /run/kmesh-vm/rc.tmp /run/kmesh-vm/rc
sync
echo b > /proc/sysrq-trigger
sleep 10
