"""Every file and link of a net folder (`results/<net>/`), by name: the one place those names are written.

`xfer render` makes the folder (the three prototxts, its record, the links to the data, the base and the final
snapshot's 2014 name); the trainer, the SLURM backend, surgery and the checks add the rest. A module that reads
or writes one of these files imports its name from here, so a rename is one edit and a reader can list a folder's
whole contents in one place. It lives in nets/ (the stage that makes the folder) so that run/, analysis/ and the
studies below it import it without a cycle.
"""
import re

# Written by `xfer render` (nets/render.py, nets/record.py).
SOLVER = "imagenet_solver.prototxt"
TRAIN_NET = "imagenet_train.prototxt"
VAL_NET = "imagenet_val.prototxt"
RENDERED = (SOLVER, TRAIN_NET, VAL_NET)
RENDER_RECORD = "render.json"        # the suite, the overrides, and every rendered file's and link's digest
MEAN_LINK = "imagenet_mean.binaryproto"  # -> the mean of the dataset the net subtracts (the paper's mean rule)
BASE_LINK = "basenet"                # -> ../<base net>: the original README's `-weights basenet/...`
IMAGES_LINK = "imagenet_images"      # -> the shared image tree (render --shared-images)

# Written by the trainer (run/train.py), the runner and the backends (run/).
STATUS = "xfer_status.json"          # the trainer's state, iteration, accuracy and Caffe's last error
LOCK = ".xfer_train.lock"            # flock: a net never trains twice at once
RETRIES = ".xfer_retries.json"       # tries used after failures that may pass, SLURM's stray stops (run/failures.py)
CPU_SOLVER = ".xfer_solver_cpu.prototxt"  # the solver with solver_mode CPU, when a run asks for the CPU
SLURM_RECORD = "xfer_slurm.json"     # the job id and options of the net's SLURM job (run/backends/slurm.py)
SLURM_SCRIPT = ".xfer_slurm.sh"      # the batch script submitted for it
SLURM_OUTPUT = ".xfer_slurm-%j.out"  # its output, one file per job id (sbatch's %j)

# Written by surgery (run/surgery.py).
INIT = "init.caffemodel"             # the transferred weights the net starts from
INIT_MANIFEST = "init.manifest.json"  # what was copied from where, with each blob's digest

# Caffe's snapshots: `<prefix>_iter_<N>.caffemodel` and `.solverstate`.
WEIGHTS, STATE = "caffemodel", "solverstate"
SNAPSHOT_RE = re.compile(r"_iter_(\d+)\.(caffemodel|solverstate)$")


def data_link(phase, backend) -> str:
    """The link to a phase's database (`imagenet_train_lmdb`, `imagenet_val_leveldb`)."""
    return f"imagenet_{phase}_{backend}"


def image_list_link(phase) -> str:
    """The link to a phase's image list (render --shared-images)."""
    return f"imagenet_{phase}_images.txt"


def snapshot_alias(prefix, iteration) -> str:
    """A snapshot's 2014 name, without the extension Caffe 1.0 adds (what `-weights basenet/...` named)."""
    return f"{prefix}_iter_{iteration}"


def snapshot_name(prefix, iteration, kind=WEIGHTS) -> str:
    """The file Caffe 1.0 writes for a snapshot: `<prefix>_iter_<N>.caffemodel` (or `.solverstate`)."""
    return f"{snapshot_alias(prefix, iteration)}.{kind}"


def final_snapshot(schedule) -> str:
    """The final snapshot's file name under a schedule (its prefix and max_iter): what transfers start from."""
    return snapshot_name(schedule["snapshot_prefix"], schedule["max_iter"]) if isinstance(schedule, dict) \
        else snapshot_name(schedule.snapshot_prefix, schedule.max_iter)


def state_of(weights_name) -> str:
    """The .solverstate Caffe writes beside a .caffemodel of the same snapshot."""
    return str(weights_name).removesuffix(f".{WEIGHTS}") + f".{STATE}"


def alias_of(weights_name) -> str:
    """A .caffemodel's 2014 name (the link render and train make)."""
    return str(weights_name).removesuffix(f".{WEIGHTS}")


def manifest_of(init_name) -> str:
    """The manifest beside an init .caffemodel (`init.caffemodel` -> `init.manifest.json`)."""
    return str(init_name).removesuffix(f".{WEIGHTS}") + ".manifest.json"
