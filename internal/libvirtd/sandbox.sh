#!/bin/sh
# Runs virtlogd and libvirtd inside the network namespace the caller
# made (ip netns exec) and a private mount namespace (unshare -m), so
# that the daemons' state, sockets, bridges and firewall rules never touch
# the host's: /run is a fresh tmpfs, and /etc/libvirt, /var/lib, /var/log
# and /var/cache are the caller's own directories under $1.
# Debian's libvirt-daemon-system would create the system users the qemu
# and network drivers resolve at start; here they exist only in this mount
# namespace, in copies of /etc/passwd and /etc/group.
# Usage: ip netns exec NS unshare -m --propagation private sh sandbox.sh DIR
set -eu
D=$1
cp /etc/passwd "$D/passwd"
cp /etc/group "$D/group"
for u in libvirt-qemu:64055 libvirt-dnsmasq:64056; do
	grep -q "^${u%%:*}:" /etc/passwd || echo "${u%%:*}:x:${u#*:}:${u#*:}::/var/lib/libvirt:/usr/sbin/nologin" >>"$D/passwd"
	grep -q "^${u%%:*}:" /etc/group || echo "${u%%:*}:x:${u#*:}:" >>"$D/group"
done
grep -q "^kvm:" /etc/group || echo "kvm:x:64057:" >>"$D/group"
grep -q "^libvirt:" /etc/group || echo "libvirt:x:64058:" >>"$D/group"
mount --bind "$D/passwd" /etc/passwd
mount --bind "$D/group" /etc/group
mount -t tmpfs -o mode=0755 kubesalt-test-run /run
mount --bind "$D/etc" /etc/libvirt
mount --bind "$D/var/lib" /var/lib
mount --bind "$D/var/log" /var/log
mount --bind "$D/var/cache" /var/cache
ip link set lo up
virtlogd -f /etc/libvirt/virtlogd.conf &
echo $! >"$D/virtlogd.pid"
exec libvirtd -f /etc/libvirt/libvirtd.conf
