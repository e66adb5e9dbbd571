"""psij executors shared by all sessions of one plugin instance, and where files go.

A psij batch executor owns a queue-polling thread that never ends, so executors are created
once per plugin and name (lazily, on first use) and shared by every session; each job gets
its own status callback, which routes it to its session.

Configuration (environment, through `PsijSettings`):

``RADICAL_EDGE_PSIJ_DIR``
    root of the plugin's files (default ``~/.radical/edge/psij``): ``work/<edge>/`` holds
    psij's submit scripts and exit-code files, ``sessions/<edge>/<sid>/`` each session's job
    output. Batch jobs write there from compute nodes, so it must be on a file system the
    compute nodes share (home directories usually are).
``RADICAL_EDGE_PSIJ_POLL``
    seconds between two scheduler queue polls (default 1; psij's own default is 30).
"""
from __future__ import annotations

import io
import logging
import os
import threading
from pathlib import Path
from typing import Any

from ...settings import PsijSettings
from .build import format_walltime, unquote_directives

log = logging.getLogger(__name__)

DEFAULT_ROOT = PsijSettings.model_fields["psij_dir"].default
#: consecutive failed queue polls before psij fails every job of an executor (its default 2
#: would turn a 3-second scheduler hiccup into failed jobs at 1 s polling)
POLL_ERROR_THRESHOLD = 60


#: the command each batch executor runs to submit; absent on PATH -> executor unavailable
SUBMIT_TOOLS = {"slurm": "sbatch", "pbs": "qsub", "pbs_classic": "qsub", "lsf": "bsub",
                "cobalt": "qsub"}


def missing_tool(name: str) -> str | None:
    """The submit command executor `name` needs but this host lacks, else None."""
    import shutil

    tool = SUBMIT_TOOLS.get(name)
    return tool if tool is not None and shutil.which(tool) is None else None


def psij_root() -> Path:
    return Path(os.path.expanduser(PsijSettings().psij_dir))


def poll_interval() -> float:
    return PsijSettings().psij_poll


def _fix_directives(executor: Any) -> None:
    """Post-process the batch scripts `executor` writes (see `build.unquote_directives`)."""
    generate = executor.generate_submit_script

    def generate_fixed(job: Any, context: dict, submit_file: Any) -> None:
        buffer = io.StringIO()
        generate(job, context, buffer)
        submit_file.write(unquote_directives(buffer.getvalue()))

    executor.generate_submit_script = generate_fixed


class ExecutorPool:
    """One psij executor per name, configured for fast state updates."""

    def __init__(self, work_dir: Path, interval: float | None = None) -> None:
        self.work_dir = work_dir
        self.interval = poll_interval() if interval is None else interval
        self._executors: dict[str, Any] = {}
        self._lock = threading.Lock()

    @staticmethod
    def known() -> frozenset[str]:
        """Executor names psij-python offers here."""
        import psij

        return frozenset(psij.JobExecutor.get_executor_names())

    def _config(self, name: str) -> Any:
        """Executor config with our work directory and polling (no launcher log file)."""
        import psij
        from psij.executors.batch.batch_scheduler_executor import (
            BatchSchedulerExecutorConfig,
        )

        config_cls: type = psij.JobExecutorConfig
        if name == "slurm":
            from psij.executors.batch.slurm import SlurmExecutorConfig as config_cls
        elif name in ("pbs", "pbs_classic"):
            from psij.executors.batch.pbs_base import PBSExecutorConfig as config_cls
        elif name == "lsf":
            from psij.executors.batch.lsf import LsfExecutorConfig as config_cls
        if issubclass(config_cls, BatchSchedulerExecutorConfig):
            config = config_cls(queue_polling_interval=self.interval,
                                initial_queue_polling_delay=self.interval,
                                queue_polling_error_threshold=POLL_ERROR_THRESHOLD)
        else:
            config = config_cls()
        config._launcher_log_file = None
        config.work_directory = self.work_dir
        self.work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return config

    def get(self, name: str) -> Any:
        """The executor `name` (blocking: the first call builds it; call from a thread)."""
        with self._lock:
            executor = self._executors.get(name)
            if executor is None:
                import psij

                executor = psij.JobExecutor.get_instance(name, config=self._config(name))
                if hasattr(executor, "generate_submit_script"):
                    _fix_directives(executor)
                if hasattr(executor, "_format_duration"):  # zero-padded walltimes
                    executor._format_duration = lambda d, n=name: format_walltime(d, n)
                self._executors[name] = executor
                log.info("psij executor %s ready (work dir %s)", name, self.work_dir)
            return executor

    def script_dir(self, name: str) -> Path:
        """Where a batch executor keeps `<native_id>.out/.ec` files."""
        return self.work_dir / name
