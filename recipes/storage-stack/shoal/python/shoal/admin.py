"""shoal.admin: the management module: the volumes the shoal Ganeti ExtStorage provider keeps."""
import os

DEFAULTS = "/etc/default/shoal-ganeti"


def volume_dir(defaults=DEFAULTS):
    """SHOAL_DIR from the provider's defaults file, else its built-in default."""
    directory = "/var/lib/shoal/volumes"
    try:
        with open(defaults) as f:
            for line in f:
                if line.startswith("SHOAL_DIR="):
                    directory = line.split("=", 1)[1].strip().strip("'")
    except FileNotFoundError:
        pass
    return directory


def volumes(defaults=DEFAULTS):
    """[(pool, volume, bytes)] sorted, for every volume of every pool."""
    base = volume_dir(defaults)
    out = []
    if not os.path.isdir(base):
        return out
    for pool in sorted(os.listdir(base)):
        pdir = os.path.join(base, pool)
        for vol in sorted(os.listdir(pdir)):
            if vol.endswith(".info") or vol.endswith(".new"):
                continue
            out.append((pool, vol, os.stat(os.path.join(pdir, vol)).st_size))
    return out
