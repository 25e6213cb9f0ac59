"""The BuildKit cases of the benchmark, run by `bench/benchmark.py --cases buildkit,two-platform,fresh-runner-cache`.

- "buildkit": the action with `builder: buildkit` against `builder: classic` on the same app, 1 tag, runs
  alternating B C B C … (a warm-up pair, then timed pairs), a fresh app marker per run: each run builds and
  uploads the app layer, and the busybox layers are in each builder's cache (BuildKit's cache is its
  own, apart from the classic builder's).
- "two-platform": `platforms: linux/amd64,linux/arm64` (arm64 under QEMU; children uploaded by digest
  through the registry API, then one index) against two single-platform runs, `linux/amd64` and
  `linux/arm64` one after the other, on the same app with fresh markers.
- "fresh-runner-cache": GitHub-hosted runners start with an empty engine. Each run here gets one: a
  dockerd of its own with a new data-root (`FreshEngine`), stopped and deleted after the run. The app
  has a slow dependency layer (a busybox `sh` loop: CPU work, no sleep) and a page changed by one line
  in a later layer. Per pair: a seed run pushes the app with `cache-to: inline`; then, each on an empty
  engine and in alternating order, the changed app is built "cached" (same repository: `cache-from`
  defaults to its image under the first tag) and "cold" (a fresh repository: nothing to import).

Every run is the action as the runner starts it, in the stack dockerd's mount namespace (where the ECR
hostnames resolve: the action uploads a multi-platform push itself), `network: none` (the stack's engine
has no bridge network), `scan: on-push`.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from figures import blobs_text, median, size_text

from stack import control
from stack.apps import write_app, write_multiarch_app
from stack.runner import RunnerStep

if TYPE_CHECKING:
    from benchmark import Bench, Run

TARGETS = {"buildkit_over_classic": 1.1, "fresh_cached_over_cold": 0.35}
# The slow dependency layer's work: iterations of a busybox `sh` loop (about 1.6 s a million here).
SLOW_LOOP = 5_000_000
Check = tuple[str, str, str, bool]


# An empty engine -------------------------------------------------------------------------------------
class FreshEngine:
    """A dockerd of its own with an empty data-root, as a fresh runner has: started for one run, then
    stopped and deleted. The stack's engine and its images are not touched.

    Set up as the stack's dockerd is (stack.control): its own mount namespace where the stack's hosts file
    is /etc/hosts (the ECR hostnames resolve to the stack's registries) and /etc/docker holds a copy of the
    stack's certs.d (BuildKit verifies the registries' certificate: the cache import pulls from them);
    no bridge network, no iptables; its own exec-root, so its own containerd.
    """

    def __init__(self, stack_config) -> None:
        self.config = stack_config
        # A short path: the sockets under it must fit a unix socket's 108 bytes.
        self.root = Path(tempfile.mkdtemp(prefix="ecr-eng-", dir="/tmp"))
        self.host = f"unix://{self.root / 'docker.sock'}"
        self.process: subprocess.Popen | None = None
        self.start_seconds = 0.0

    def __enter__(self) -> FreshEngine:
        etc = self.root / "etc"
        shutil.copytree(self.config.docker_etc / "certs.d", etc / "certs.d")
        script = (
            f"mount --bind {self.config.hosts_file} /etc/hosts && mount --bind {etc} /etc/docker && "
            "exec dockerd --iptables=false --ip6tables=false --bridge=none "
            f"--data-root {self.root / 'data'} --exec-root {self.root / 'exec'} "
            f"--host {self.host} --pidfile {self.root / 'dockerd.pid'}"
        )
        started = time.monotonic()
        with open(self.root / "dockerd.log", "wb") as log:
            self.process = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        while not control.docker_ok(self.root / "docker.sock"):
            if self.process.poll() is not None or time.monotonic() - started > 30:
                tail = (self.root / "dockerd.log").read_text(errors="replace")[-2000:]
                self.__exit__(None, None, None)
                raise RuntimeError(f"the fresh engine did not start:\n{tail}")
            time.sleep(0.05)
        self.start_seconds = time.monotonic() - started
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            # This dockerd only (unshare execs sh, which execs dockerd: one pid); it stops its containerd.
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        # Its overlay mounts were in its own mount namespace, gone with it.
        shutil.rmtree(self.root, ignore_errors=True)


# Apps --------------------------------------------------------------------------------------------------
def write_slow_app(directory: Path, *, salt: str, marker: str) -> Path:
    """`write_app`'s app with a slow dependency layer before the page: a busybox `sh` loop of SLOW_LOOP
    iterations (CPU work, over 5 s here) that writes /deps/lib.txt, plus 4 MB of generated data, as an
    install step leaves files behind. `salt` makes the layer new to the registry; `marker` is the page's
    one line, the change between runs."""
    write_app(directory, marker=marker)
    lines = (directory / "Dockerfile").read_text().splitlines(keepends=True)
    slow = (
        f"RUN i=0; while [ $i -lt {SLOW_LOOP} ]; do i=$((i+1)); done; mkdir /deps && "
        f"echo 'deps {salt} '$i > /deps/lib.txt && head -c 4000000 /dev/urandom > /deps/vendor.bin\n"
    )
    lines.insert(3, slow)  # after the busybox layers, before the page
    (directory / "Dockerfile").write_text("".join(lines))
    return directory


def slow_step(run: Run) -> tuple[bool, float | None]:
    """The slow dependency step in the build log: (shown CACHED, its seconds when it ran)."""
    lines = _lines(run)
    number = next((found.group(1) for line in lines if (found := re.match(r"#(\d+) \[.*RUN i=0;", line))), None)
    if number is None:
        return False, None
    done = next(
        (float(found.group(1)) for line in lines if (found := re.match(rf"#{number} DONE ([0-9.]+)s$", line))), None
    )
    return f"#{number} CACHED" in lines, done


def _slow_text(cached: bool, seconds: float | None) -> str:
    return "CACHED" if cached else f"ran {seconds:.1f} s" if seconds is not None else "not found"


def _lines(run: Run) -> list[str]:
    return getattr(run, "_lines", [])


# The cases ---------------------------------------------------------------------------------------------
def buildkit_case(bench: Bench, run_id: str, pairs: int) -> dict:
    """`builder: buildkit` against `builder: classic`: alternating pairs, fresh marker and repository each."""
    runs: list[tuple[Run, Run]] = []
    for pair in range(pairs + 1):
        both = []
        for builder in ("buildkit", "classic"):
            step = RunnerStep.in_directory(bench.work / "buildkit" / builder / str(pair))
            write_app(step.workspace / "app", marker=f"{run_id}-buildkit-{builder}-{pair}")
            repository = f"bench-{run_id}/buildkit-{builder}-{pair}"
            inputs = {"context": "app", "builder": builder}
            both.append(bench.action("buildkit", pair, repository, step, inputs, in_namespace=True))
        runs.append((both[0], both[1]))
        _print_pair("buildkit", pair, ("buildkit", "classic"), both)
    timed = [pair for pair in runs if pair[0].pair > 0]
    return {
        "case": "buildkit",
        "buildkit": _side([b for b, _ in timed]),
        "classic": _side([c for _, c in timed]),
        "ratio_median": median([b.seconds / c.seconds for b, c in timed]),
        "build_ratio_median": median([b.steps["Build"] / c.steps["Build"] for b, c in timed]),
        "ratios": [b.seconds / c.seconds for b, c in timed],
    }


def two_platform_case(bench: Bench, run_id: str, pairs: int) -> dict:
    """`platforms: linux/amd64,linux/arm64` against `linux/amd64` then `linux/arm64` in two runs."""
    sides = {
        "two-platform": ("linux/amd64,linux/arm64",),
        "amd64+arm64": ("linux/amd64", "linux/arm64"),
    }
    runs: list[dict[str, list[Run]]] = []
    for pair in range(pairs + 1):
        found: dict[str, list[Run]] = {}
        for side, platform_runs in sides.items():
            found[side] = []
            for platforms in platform_runs:
                label = platforms.replace("linux/", "").replace(",", "-")
                step = RunnerStep.in_directory(bench.work / "two-platform" / label / str(pair))
                write_multiarch_app(
                    step.workspace / "app", marker=f"{run_id}-{label}-{pair}", config=bench.stack.config
                )
                repository = f"bench-{run_id}/platforms-{label}-{pair}"
                inputs = {"context": "app", "builder": "buildkit", "platforms": platforms}
                found[side].append(bench.action("two-platform", pair, repository, step, inputs, in_namespace=True))
        runs.append(found)
        two, singles = found["two-platform"][0], found["amd64+arm64"]
        _print_pair(
            "two-platform",
            pair,
            ("2 platforms", "2 runs"),
            [two, _sum_runs(singles)],
        )
    timed = [found for pair, found in enumerate(runs) if pair > 0]
    two_runs = [found["two-platform"][0] for found in timed]
    return {
        "case": "two-platform",
        "two_platform": _side(two_runs),
        "single_runs_sum_median_seconds": median([sum(r.seconds for r in f["amd64+arm64"]) for f in timed]),
        "single_amd64": _side([f["amd64+arm64"][0] for f in timed]),
        "single_arm64": _side([f["amd64+arm64"][1] for f in timed]),
        "ratio_median": median(
            [f["two-platform"][0].seconds / sum(r.seconds for r in f["amd64+arm64"]) for f in timed]
        ),
    }


def fresh_runner_cache_case(bench: Bench, run_id: str, pairs: int) -> dict:
    """Cold against cached builds of a one-line change, each on an empty engine (see the module's doc)."""
    runs: list[dict[str, Run]] = []
    engine_starts: list[float] = []
    slows: list[dict[str, tuple[bool, float | None]]] = []
    for pair in range(1, pairs + 1):  # no warm-up: every run starts from nothing anyway
        salt = f"{run_id}-{pair}"
        cached_repository = f"bench-{run_id}/fresh-cache-{pair}"
        repositories = {
            "seed": cached_repository,
            "cached": cached_repository,
            "cold": f"bench-{run_id}/fresh-cold-{pair}",
        }
        order = ("seed", "cached", "cold") if pair % 2 else ("seed", "cold", "cached")
        found: dict[str, Run] = {}
        for side in order:
            step = RunnerStep.in_directory(bench.work / "fresh-cache" / side / str(pair))
            write_slow_app(step.workspace / "app", salt=salt, marker="first" if side == "seed" else "changed")
            # One tag names the latest build, as on a branch: the cached run moves it.
            inputs = {"context": "app", "builder": "buildkit", "cache-to": "inline", "if-tag-exists": "overwrite"}
            with FreshEngine(bench.stack.config) as engine:
                engine_starts.append(engine.start_seconds)
                found[side] = bench.action(
                    "fresh-runner-cache",
                    pair,
                    repositories[side],
                    step,
                    inputs,
                    docker_host=engine.host,
                    in_namespace=True,
                )
        slow = {side: slow_step(run) for side, run in found.items()}
        runs.append(found)
        slows.append(slow)
        _print_pair("fresh-runner-cache", pair, ("cached", "cold"), [found["cached"], found["cold"]])
        print(
            f"      seed run {found['seed'].seconds:.2f} s; the slow step: "
            + ", ".join(f"{side} {_slow_text(*slow[side])}" for side in ("seed", "cached", "cold")),
            flush=True,
        )
    return {
        "case": "fresh-runner-cache",
        "slow_loop_iterations": SLOW_LOOP,
        "seed": _side([f["seed"] for f in runs]),
        "cached": _side([f["cached"] for f in runs]),
        "cold": _side([f["cold"] for f in runs]),
        "ratio_median": median([f["cached"].seconds / f["cold"].seconds for f in runs]),
        "build_ratio_median": median([f["cached"].steps["Build"] / f["cold"].steps["Build"] for f in runs]),
        "ratios": [f["cached"].seconds / f["cold"].seconds for f in runs],
        # Whether the cached runs found the slow step in the cache (each must), and its time where it ran.
        "slow_step_cached": [slow["cached"][0] for slow in slows],
        "slow_step_median_seconds": median([s[1] for slow in slows for s in slow.values() if s[1] is not None]),
        "engine_start_median_seconds": median(engine_starts),
    }


CASES: dict[str, Callable[[Bench, str, int], dict]] = {
    "buildkit": buildkit_case,
    "two-platform": two_platform_case,
    "fresh-runner-cache": fresh_runner_cache_case,
}


# Figures -----------------------------------------------------------------------------------------------
def _side(runs: list[Run]) -> dict:
    """Medians of a list of runs of one side: wall time, each step, bytes uploaded."""
    names = list(dict.fromkeys(name for run in runs for name in run.steps))
    return {
        "median_seconds": median([run.seconds for run in runs]),
        "steps_median_seconds": {name: median([r.steps[name] for r in runs if name in r.steps]) for name in names},
        "uploaded_blobs_max": max((run.uploaded_blobs for run in runs), default=0),
        "uploaded_bytes_max": max((run.uploaded_bytes for run in runs), default=0),
        "mounted_blobs_max": max((run.mounted_blobs for run in runs), default=0),
        "downloaded_bytes_max": max((run.downloaded_bytes for run in runs), default=0),
        "peak_rss_mb": max((run.peak_rss_mb for run in runs), default=0.0),
        "seconds": [run.seconds for run in runs],
    }


def _sum_runs(runs: list[Run]) -> Run:
    """Two runs as one, for printing: their times, steps and uploads added."""
    first = runs[0]
    total = type(first)(first.side, first.case, first.pair, sum(r.seconds for r in runs), 0)
    total.uploaded_blobs = sum(r.uploaded_blobs for r in runs)
    total.uploaded_bytes = sum(r.uploaded_bytes for r in runs)
    return total


def _print_pair(case: str, pair: int, labels: tuple[str, str], runs: list[Run]) -> None:
    if pair == (0 if case != "fresh-runner-cache" else 1):
        print(
            f"\n== {case}\n   {'pair':>4} {labels[0]:>12} {labels[1]:>12} {'ratio':>6}  {'upload':>14} {'upload':>14}"
        )
    a, b = runs
    label = "warm" if pair == 0 else str(pair)
    print(
        f"   {label:>4} {a.seconds:11.2f}s {b.seconds:11.2f}s {a.seconds / b.seconds:6.2f}  "
        f"{blobs_text(a.uploaded_blobs, a.uploaded_bytes):>14} {blobs_text(b.uploaded_blobs, b.uploaded_bytes):>14}",
        flush=True,
    )


def _steps(side: dict) -> str:
    return "  ".join(f"{name} {value:.2f}" for name, value in side["steps_median_seconds"].items())


def print_summary(summaries: dict[str, dict]) -> None:
    """The BuildKit cases' medians, a line per side with its steps."""
    if not summaries:
        return
    print("\n== BuildKit cases, medians over the timed runs (s)")
    rows: list[tuple[str, dict]] = []
    if "buildkit" in summaries:
        rows += [("buildkit", summaries["buildkit"]["buildkit"]), ("classic", summaries["buildkit"]["classic"])]
    if "two-platform" in summaries:
        s = summaries["two-platform"]
        rows += [
            ("2 platforms", s["two_platform"]),
            ("amd64 only", s["single_amd64"]),
            ("arm64 only", s["single_arm64"]),
        ]
    if "fresh-runner-cache" in summaries:
        s = summaries["fresh-runner-cache"]
        rows += [("fresh: seed", s["seed"]), ("fresh: cached", s["cached"]), ("fresh: cold", s["cold"])]
    for label, side in rows:
        upload = blobs_text(side["uploaded_blobs_max"], side["uploaded_bytes_max"])
        extra = f"+{side['mounted_blobs_max']} mounted, read {size_text(side['downloaded_bytes_max'])}"
        print(f"  {label:<14} {side['median_seconds']:6.2f}  upload {upload:>12} {extra:>24}  {_steps(side)}")
    if "buildkit" in summaries:
        s = summaries["buildkit"]
        print(f"  buildkit / classic: {s['ratio_median']:.2f} whole run, {s['build_ratio_median']:.2f} Build step")
    if "two-platform" in summaries:
        s = summaries["two-platform"]
        print(
            f"  two platforms in one run {s['two_platform']['median_seconds']:.2f} s against "
            f"{s['single_runs_sum_median_seconds']:.2f} s for two single-platform runs ({s['ratio_median']:.2f})"
        )
    if "fresh-runner-cache" in summaries:
        s = summaries["fresh-runner-cache"]
        print(
            f"  fresh runner, cached / cold: {s['ratio_median']:.2f} whole run, {s['build_ratio_median']:.2f} "
            f"Build step; slow step {s['slow_step_median_seconds']:.1f} s where it ran, cached in the cached runs: "
            f"{s['slow_step_cached']}; "
            f"engine start {s['engine_start_median_seconds']:.2f} s (not counted)"
        )


def checks(summaries: dict[str, dict]) -> list[Check]:
    found: list[Check] = []
    if "buildkit" in summaries:
        ratio = summaries["buildkit"]["ratio_median"]
        limit = TARGETS["buildkit_over_classic"]
        found.append(("builder: buildkit / classic, 1 tag", f"≤ {limit}", f"{ratio:.2f}", ratio <= limit))
    if "fresh-runner-cache" in summaries:
        ratio = summaries["fresh-runner-cache"]["ratio_median"]
        reused = all(summaries["fresh-runner-cache"]["slow_step_cached"])
        limit = TARGETS["fresh_cached_over_cold"]
        measured = f"{ratio:.2f}" + ("" if reused else " (cache not used)")
        found.append(("fresh runner: ECR cache / cold build", f"≤ {limit}", measured, ratio <= limit and reused))
    return found


def run_cases(bench: Bench, names: list[str], run_id: str, pairs: int) -> dict[str, dict]:
    """The BuildKit cases among `names`, in that order: their summaries by name."""
    if "fresh-runner-cache" in names and not shutil.which("unshare"):
        raise SystemExit("No unshare(1): the fresh-runner-cache case starts engines in mount namespaces of their own.")
    return {name: CASES[name](bench, run_id, pairs) for name in names if name in CASES}
