"""Fake GPUs for the Ray tests: a worker_process_setup_hook (RayOptions.worker_setup) that makes
every GPU Ray gives a task a device greenbench measures on the CPU, named after the node's fake
accelerator type and with a UUID of its own (node and GPU id), so that the whole cluster path
(placement by num_gpus and accelerator type, naming, records, resume) runs on a CPU machine.
Energy comes from the fake meter (--meter fake), labelled so; nothing here is a measurement."""

from __future__ import annotations


def install() -> None:
    from greenbench.measure import cluster, devices

    real = cluster.node_device

    def fake_gpus(gpus: int) -> devices.Device:
        if not gpus:
            return real(0)
        import ray

        node = ray.get_runtime_context().get_node_id()
        ids = "-".join(str(g) for g in ray.get_gpu_ids())
        return devices.Device("cpu", f"fake GPU x{gpus}", uuid=f"GPU-fake-{node[:8]}-{ids}")

    cluster.node_device = fake_gpus
