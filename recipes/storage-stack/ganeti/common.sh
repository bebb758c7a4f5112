# Shared by the shoal ExtStorage scripts (sourced). Ganeti runs each script with VOL_NAME and the
# EXTP_* parameters in its environment, from the provider directory.
set -eu
SHOAL_DIR=/var/lib/shoal/volumes
[ -r /etc/default/shoal-ganeti ] && . /etc/default/shoal-ganeti
POOL=${EXTP_POOL:-default}
case $POOL in
  ''|*[!a-z0-9-]*|-*) echo "shoal: invalid pool '$POOL' (lower-case letters, digits, '-')" >&2; exit 1 ;;
esac
case ${VOL_NAME:-} in
  ''|*/*|.*) echo "shoal: invalid volume name '${VOL_NAME:-}'" >&2; exit 1 ;;
esac
VOL=$SHOAL_DIR/$POOL/$VOL_NAME
# the loop devices backing the volume file, one per line
vol_loops() { losetup -n -O NAME -j "$VOL" 2>/dev/null || true; }
