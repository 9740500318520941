"""What a data-parallel step costs on Dask, and what that projects to on N machines (issue 16, item 7).

Measured, for an LSTM classifier of hidden size 32, 128 and 512 (input 32, T=50, a global batch of 64, Adam):

1. **Throughput per worker at one thread**: sequences per second of ``rnnfast.parallel.shard_gradient`` alone
   (forward, loss, backward of one shard, in this process, ``rnnfast.set_num_threads(1)``).
2. **Communication per step**, on a Dask cluster of 1 and 2 worker processes of one thread: the bytes
   (the parameters scattered to every worker, one gradient per rank gathered: counted from the arrays) and
   the seconds of a *communication round* (a step of ``rnnfast.dask.fit`` whose tasks return gradient-sized
   arrays at once: everything of a step but the shard's computation), and the seconds of a whole step.
3. The same with **link latency** between the driver's machine (client and scheduler) and the workers: each
   worker reaches the scheduler, and is reached by the client and the scheduler, through a proxy process
   that delays every chunk it forwards by ``delay`` each way (round trip ``2 * delay``). Why a proxy and not
   ``tc netem``: this machine's kernel has no netem qdisc (``tc qdisc add dev lo root netem delay 1ms`` ->
   "Error: Specified qdisc kind is unknown."; ``ip netns`` and veth pairs do work, but without netem they
   cannot delay). The proxy adds its own cost: its 0 ms row is the baseline of the delayed rows.
4. The **projection** for N machines, one worker each: ``speed-up(N) = compute(1) / (compute(1) / N +
   comm(N))``, with ``compute(1)`` the step's computation on one worker (the global batch through
   ``shard_gradient``) and ``comm(N) = comm(1) + (N - 1) * s``: the driver sends the parameters to, and
   receives a gradient from, each worker in turn, so each worker adds a cost ``s`` of its bytes through the
   driver (the link's latency is paid once: the workers' round trips overlap); ``s`` is ``comm(2) -
   comm(1)``, its median over the links for one model size (one link's difference is within the noise of
   this shared machine). Both measured. A model,
   not a measurement: it assumes the shards' computation divides by N (it does less well: smaller shards run
   the kernels at a lower rate) and that the driver's link is the bottleneck.

Run (about 2 minutes on two cores; --quick: hidden 32 and 128, fewer steps)::

    PYTHONPATH=python python benchmarks/scale_comm.py [--quick] [--delays 0,1,10]

Needs dask and distributed (``pip install "rnnfast[dask]"``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import numpy as np

T, I, C, BATCH = 50, 32, 10, 64


def model_of(hidden: int) -> Any:
    import rnnfast
    from rnnfast import nn

    return nn.Sequential(rnnfast.LSTM(I, hidden, seed=0), nn.LastStep(), nn.Linear(hidden, C, seed=1))


def data(steps: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    n = BATCH * steps
    return rng.standard_normal((T, n, I)).astype(np.float32), rng.integers(0, C, size=n)


# ---------------------------------------------------------------------------------------------------------
# 1. Throughput per worker at one thread
# ---------------------------------------------------------------------------------------------------------


def shard_seconds(hidden: int, batch: int, repeats: int = 5) -> float:
    """Median seconds of shard_gradient on ``batch`` sequences at one thread (what one worker computes)."""
    import rnnfast
    from rnnfast.parallel import plan_fit, shard_gradient

    model = model_of(hidden)
    x, y = data(1)
    plan = plan_fit(model, x[:, :batch], y[:batch], world_size=1, loss="cross_entropy", optimizer="adam",
                    batch_size=batch, seed=0, verbose=0)
    task = plan.tasks(0, 0, np.arange(batch))[0]
    before = rnnfast.get_num_threads()
    rnnfast.set_num_threads(1)
    try:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            shard_gradient(model, plan.x, plan.y, plan.lengths, task, plan.config)
            times.append(time.perf_counter() - start)
    finally:
        rnnfast.set_num_threads(before)
    return statistics.median(times)


# ---------------------------------------------------------------------------------------------------------
# The delaying proxy (a process of its own, so that its forwarding does not share the driver's GIL)
# ---------------------------------------------------------------------------------------------------------


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Forward what ``reader`` gives to ``writer``, each chunk ``delay`` seconds after it arrived, in order."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def send() -> None:
        while True:
            due, chunk = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not chunk:
                writer.close()
                return
            writer.write(chunk)
            await writer.drain()

    sender = asyncio.create_task(send())
    try:
        while True:
            chunk = await reader.read(1 << 16)
            await queue.put((loop.time() + delay, chunk))
            if not chunk:
                break
    except ConnectionError:
        await queue.put((loop.time(), b""))
    await sender


async def _serve(routes: Sequence[tuple[int, int]], delay: float) -> None:
    async def handler_for(target: int) -> Any:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target)
            except OSError:
                writer.close()
                return
            await asyncio.gather(_pipe(reader, up_writer, delay), _pipe(up_reader, writer, delay),
                                 return_exceptions=True)
        return handle

    servers = [await asyncio.start_server(await handler_for(target), "127.0.0.1", port) for port, target in routes]
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------------------------------------
# 2, 3. A cluster, its communication round and its steps
# ---------------------------------------------------------------------------------------------------------


class Cluster:
    """A scheduler here and ``workers`` worker processes of one thread; with ``delay`` not None, each worker
    behind a delaying proxy (see the module notes)."""

    def __init__(self, workers: int, delay: Optional[float]) -> None:
        from distributed import Client, LocalCluster

        self.processes: list[subprocess.Popen[bytes]] = []
        env = {**os.environ, "RNNFAST_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
               "PYTHONPATH": os.pathsep.join([p for p in sys.path if p])}
        if delay is None:
            self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                        dashboard_address=":0", silence_logs=40)
        else:
            self.cluster = LocalCluster(n_workers=0, dashboard_address=":0", silence_logs=40,
                                        scheduler_kwargs={"host": "127.0.0.1"})
            scheduler_port = int(self.cluster.scheduler_address.rsplit(":", 1)[1])
            for _ in range(workers):
                to_scheduler, to_worker, worker_port = free_port(), free_port(), free_port()
                proxy = subprocess.Popen([sys.executable, __file__, "--proxy",
                                          f"{to_scheduler}:{scheduler_port},{to_worker}:{worker_port}",
                                          "--proxy-delay", str(delay)], stdout=subprocess.PIPE, env=env)
                assert proxy.stdout is not None and proxy.stdout.readline().strip() == b"ready"
                self.processes.append(proxy)
                self.processes.append(subprocess.Popen(
                    [sys.executable, "-m", "distributed.cli.dask_worker", f"tcp://127.0.0.1:{to_scheduler}",
                     "--nthreads", "1", "--no-nanny", "--no-dashboard",
                     "--listen-address", f"tcp://127.0.0.1:{worker_port}",
                     "--contact-address", f"tcp://127.0.0.1:{to_worker}"],
                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        self.client = Client(self.cluster)
        self.client.wait_for_workers(workers, timeout=120)

    def close(self) -> None:
        self.client.close()
        for p in reversed(self.processes):
            p.terminate()
        for p in self.processes:
            p.wait()
        self.cluster.close()


def _null_shard(token: str, bundle: Any, params: Mapping[str, np.ndarray], task: Any) -> Any:
    """A rank's task without its computation: gradient-sized arrays (made, so not a cached value) as its result."""
    from rnnfast.parallel import ShardResult

    grads = {name: np.ones_like(p) for name, p in params.items()}
    return ShardResult(task.rank, len(task.indices), 0.0, None, grads, task.epoch, task.step)


def fit_step_seconds(client: Any, hidden: int, ranks: int, steps: int, compute: bool = True) -> tuple[float, int, int]:
    """(median seconds of a step of rnnfast.dask.fit, bytes sent per step, bytes received per step); without
    ``compute``, each rank's task returns gradient-sized arrays at once: the step's communication alone."""
    import rnnfast.dask as rdask
    from rnnfast import nn
    from rnnfast.parallel import run_data_parallel

    times: list[float] = []

    class Timed(rdask.DaskExecutor):
        if not compute:
            _task = staticmethod(_null_shard)

        def gradients(self, params: Any, tasks: Any) -> Any:
            start = time.perf_counter()
            out = super().gradients(params, tasks)
            times.append(time.perf_counter() - start)
            return out

    model = model_of(hidden)
    x, y = data(steps)
    executor = Timed(client, ranks)
    run_data_parallel(executor, model, x, y, loss="cross_entropy", optimizer=nn.Adam(model), batch_size=BATCH,
                      seed=0, verbose=0)
    return statistics.median(times[1:]), executor.bytes_sent // steps, executor.bytes_received // steps


# ---------------------------------------------------------------------------------------------------------


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--delays", default="0,1,10", help="one-way delays in ms through the proxy (comma list)")
    parser.add_argument("--proxy", help=argparse.SUPPRESS)
    parser.add_argument("--proxy-delay", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.proxy:
        routes = [tuple(int(v) for v in r.split(":")) for r in args.proxy.split(",")]
        asyncio.run(_serve([(a, b) for a, b in routes], args.proxy_delay / 1000))
        return

    import rnnfast

    hiddens = [32, 128] if args.quick else [32, 128, 512]
    steps = 4 if args.quick else 12
    delays = [float(d) for d in args.delays.split(",") if d]
    print(f"rnnfast {rnnfast.__version__}, isa {rnnfast.isa()}, {os.cpu_count()} CPUs; LSTM({I}, H) -> LastStep -> "
          f"Linear(H, {C}), T={T}, global batch {BATCH}, Adam")

    print("\n## Throughput per worker at one thread (shard_gradient alone)\n")
    print("| H | parameters | batch 64: s/step | sequences/s | batch 32: sequences/s |")
    print("|---|---|---|---|---|")
    compute: dict[int, float] = {}
    for h in hiddens:
        full, half = shard_seconds(h, BATCH), shard_seconds(h, BATCH // 2)
        compute[h] = full
        n_params = sum(p.size for p in model_of(h).parameters().values())
        print(f"| {h} | {n_params:,} | {full:.4f} | {BATCH / full:,.0f} | {BATCH // 2 / half:,.0f} |")

    print("\n## Communication per step (Dask, workers of one thread)\n")
    print("| link | H | workers | bytes out | bytes in | comm round s | fit step s |")
    print("|---|---|---|---|---|---|---|")
    comm: dict[tuple[str, int, int], float] = {}
    links: list[tuple[str, Optional[float]]] = [("loopback", None)] + [(f"proxy {d:g} ms", d) for d in delays]
    for label, delay in links:
        for workers in (1, 2):
            cluster = Cluster(workers, delay)
            try:
                for h in hiddens:
                    seconds = fit_step_seconds(cluster.client, h, workers, steps, compute=False)[0]
                    step, sent, received = fit_step_seconds(cluster.client, h, workers, steps)
                    comm[(label, h, workers)] = seconds
                    print(f"| {label} | {h} | {workers} | {sent:,} | {received:,} | {seconds:.4f} | {step:.4f} |",
                          flush=True)
            finally:
                cluster.close()

    print("\n## Projection (a model, not a measurement): speed-up on N machines of one worker each\n")
    ns = (2, 4, 8, 16, 32)
    print("speed-up(N) = compute(1) / (compute(1)/N + comm(N)), comm(N) = comm(1) + (N-1) * s, s the per-worker")
    print("cost: comm(2) - comm(1), its median over the links for the model size;")
    print("compute(1): the global batch's shard_gradient at one thread (batch 64 measured; 1024 = 16 times it);")
    print("comm: the measured communication round (it does not depend on the batch).\n")
    slopes = {h: max(statistics.median(comm[(label, h, 2)] - comm[(label, h, 1)] for label, _ in links), 0.0)
              for h in hiddens}
    print("| link | H | batch | compute(1) s | comm(1) s | s | " + " | ".join(f"N={n}" for n in ns) + " |")
    print("|---|---|---|---|---|---|" + "---|" * len(ns))
    for label, _ in links:
        for h in hiddens:
            for batch in (BATCH, 1024):
                c1, m1, slope = compute[h] * batch / BATCH, comm[(label, h, 1)], slopes[h]
                cells = [f"{c1 / (c1 / n + m1 + (n - 1) * slope):.2f}" for n in ns]
                print(f"| {label} | {h} | {batch} | {c1:.4f} | {m1:.4f} | {slope:.4f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
