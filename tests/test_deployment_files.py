"""docker-compose.yml and the Dockerfile cannot run here (no Docker engine); check what can be checked."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_compose_file_parses_and_wires_api_to_postgres_and_redis() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"api", "worker", "postgres", "redis"} <= set(services)
    worker = services["worker"]
    assert worker["command"] == ["memory-service", "worker"]
    assert worker["environment"]["MEMORY_SERVICE_REDIS_URL"] == services["api"]["environment"]["MEMORY_SERVICE_REDIS_URL"]
    assert worker["environment"]["MEMORY_SERVICE_DATABASE_URL"] == services["api"]["environment"]["MEMORY_SERVICE_DATABASE_URL"]
    api = services["api"]
    env = api["environment"]
    assert env["MEMORY_SERVICE_DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert "@postgres:5432/" in env["MEMORY_SERVICE_DATABASE_URL"]
    assert env["MEMORY_SERVICE_REDIS_URL"] == "redis://redis:6379/0"
    assert api["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert api["depends_on"]["redis"]["condition"] == "service_healthy"
    for name in ("api", "postgres", "redis"):
        assert services[name]["healthcheck"]["test"], name
    declared = set(compose["volumes"])
    used = {v.split(":")[0] for s in services.values() for v in s.get("volumes", []) if not v.startswith("/")}
    assert used <= declared
    # The compose credentials are the ones the database URL uses.
    pg_env = services["postgres"]["environment"]
    assert f"{pg_env['POSTGRES_USER']}:{pg_env['POSTGRES_PASSWORD']}@" in env["MEMORY_SERVICE_DATABASE_URL"]
    assert env["MEMORY_SERVICE_DATABASE_URL"].endswith("/" + pg_env["POSTGRES_DB"])


def test_api_and_worker_scale_without_a_host_port_clash_or_a_shared_index() -> None:
    """`docker compose up --scale api=2 --scale worker=2`: every API replica can get a host port
    of its own, and no two replicas or workers share a data dir (their FAISS files)."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name in ("api", "worker"):
        service = services[name]
        assert "container_name" not in service, name  # a fixed name cannot be scaled
        for volume in service.get("volumes", []):
            # an anonymous volume ("/data") is one per container; a named one is shared by all
            assert volume.startswith("/") and ":" not in volume, f"{name} shares volume {volume}"
        assert service["environment"]["MEMORY_SERVICE_DATA_DIR"] == "/data"
    assert "ports" not in services["worker"]
    for mapping in services["api"]["ports"]:
        host, _, container = str(mapping).rpartition(":")
        assert container == services["api"]["environment"]["MEMORY_SERVICE_PORT"]
        if host:  # a fixed host port would clash at the second replica: it must be a range
            low, _, high = host.partition("-")
            assert high and int(high) - int(low) >= 1, f"host port {host} is fixed"


def test_dockerfile_copies_every_package_and_serves_on_all_interfaces() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("memory_service", "compressors", "stores", "api"):
        assert f"COPY {package} ./{package}" in dockerfile
    assert "MEMORY_SERVICE_HOST=0.0.0.0" in dockerfile
    assert 'CMD ["memory-service", "serve"]' in dockerfile


def _arg_default(dockerfile: str, name: str) -> str:
    match = re.search(rf'^ARG {name}=("?)(.*)\1$', dockerfile, re.MULTILINE)
    assert match, f"no ARG {name}= in the Dockerfile"
    return match.group(2)


def test_dockerfile_installs_a_lock_file_and_cpu_torch() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY requirements ./requirements" in dockerfile
    lock = _arg_default(dockerfile, "LOCK")
    assert lock == "requirements/runtime.txt"
    assert (ROOT / "requirements" / "runtime-lm.txt").exists()
    assert 'pip install --no-deps -r "${LOCK}"' in dockerfile
    assert "pip install --no-deps --no-build-isolation ." in dockerfile
    # torch alone from PyTorch's CPU index, at the version the lock pins: 2.13.0, the CPU build.
    assert re.search(r"pip install --no-deps --index-url \S+/whl/cpu .*torch==", dockerfile)
    for name in ("runtime.txt", "runtime-lm.txt"):
        assert re.search(r"^torch==2\.13\.0\+cpu$", (ROOT / "requirements" / name).read_text(), re.MULTILINE), name


def test_dockerfile_builds_llama_cpp_with_the_install_scripts_portable_flags() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    install = (ROOT / "scripts" / "install.sh").read_text()
    portable = re.search(r'^PORTABLE_CMAKE_ARGS="(.*)"$', install, re.MULTILINE)
    assert portable, "no PORTABLE_CMAKE_ARGS in scripts/install.sh"
    assert _arg_default(dockerfile, "CMAKE_ARGS") == portable.group(1)
    assert 'CMAKE_ARGS="${CMAKE_ARGS}" pip install' in dockerfile
    for flag in ("-DGGML_NATIVE=OFF", "-DGGML_AVX512=OFF", "-DGGML_AMX_INT8=OFF"):
        assert flag in portable.group(1)


def test_compose_llm_service_serves_a_gguf_from_its_volume_and_the_worker_points_at_it() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    cpu, gpu, worker = services["llm"], services["llm-gpu"], services["worker"]
    # opt-in: the default deployment (extractive) starts no LM server
    assert cpu["profiles"] == ["llm"] and gpu["profiles"] == ["gpu"]
    assert cpu["image"].startswith("ghcr.io/ggml-org/llama.cpp:server")
    assert gpu["image"] == "ghcr.io/ggml-org/llama.cpp:server-cuda"
    for llm in (cpu, gpu):
        env = llm["environment"]
        mount = next(v for v in llm["volumes"] if v.split(":")[1] == "/models")
        assert mount.split(":")[0] in compose["volumes"] and mount.endswith(":ro")
        assert env["LLAMA_ARG_MODEL"].startswith("/models/") and env["LLAMA_ARG_MODEL"].endswith(".gguf}")
        assert env["LLAMA_ARG_HOST"] == "0.0.0.0"
        assert llm["healthcheck"]["test"][-1] == f"http://127.0.0.1:{env['LLAMA_ARG_PORT']}/health"
    assert gpu["environment"]["LLAMA_ARG_N_GPU_LAYERS"] == "999"
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert "llm" in gpu["networks"]["default"]["aliases"]  # the GPU server answers under the same name
    # the worker's openai backend reaches the server by service name and port, asks for the
    # served alias, and keeps as many windows in flight as the server has slots
    wenv = worker["environment"]
    port = cpu["environment"]["LLAMA_ARG_PORT"]
    assert wenv["MEMORY_SERVICE_LLM_BASE_URL"] == f"${{MEMORY_SERVICE_LLM_BASE_URL:-http://llm:{port}/v1}}"
    assert wenv["MEMORY_SERVICE_COMPRESSOR"] == "${MEMORY_SERVICE_COMPRESSOR:-extractive}"
    assert wenv["MEMORY_SERVICE_LLM_MODEL"] == cpu["environment"]["LLAMA_ARG_ALIAS"]
    assert wenv["MEMORY_SERVICE_LLM_CONCURRENCY"] == cpu["environment"]["LLAMA_ARG_N_PARALLEL"]
    # every variable the worker sets is a setting (a typo would be silently ignored)
    from memory_service.settings import Settings

    for name in wenv:
        assert name.removeprefix("MEMORY_SERVICE_").lower() in Settings.model_fields, name
