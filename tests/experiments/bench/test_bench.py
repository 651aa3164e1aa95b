"""Tests of experiments.bench: the timer, settings, miniature sections, JSON output."""

import json
import math

import jax.numpy as jnp
import numpy as np
import pytest

from experiments import configs
from experiments.bench import data, fit, machine, protocol, scores, settings, suite, timing


def _positive_finite(x) -> bool:
  return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def _tiny_settings(**kw) -> settings.Settings:
  base = dict(matmul_n=128, matmul_repeats=2, warmup=1, repeats=2,
              el2n_n_lenet=40, grand_n_lenet=12, el2n_n_resnet=0, grand_n_resnet=0,
              el2n_chunk=16, grand_chunk_lenet=8)
  base.update(kw)
  return settings.Settings(**base)


# ----------------------------------------------------------------------------- helpers


def test_time_jit_reports_compile_and_runs():
  t = timing.time_jit(lambda a: jnp.sin(a) @ a, jnp.ones((32, 32)), warmup=1, repeats=3)
  assert set(t) == {"compile_seconds", "seconds", "median_seconds", "runs_seconds"}
  assert len(t["runs_seconds"]) == 3
  assert t["seconds"] == min(t["runs_seconds"]) > 0
  assert t["compile_seconds"] > 0
  with pytest.raises(ValueError, match="repeats"):
    timing.time_jit(jnp.sin, jnp.ones(3), repeats=0)


def test_time_call_counts_calls():
  calls = []
  t = timing.time_call(lambda: calls.append(1) or jnp.ones(3), repeats=2)
  assert len(calls) == 3  # One first call, two timed ones.
  assert t["first_call_seconds"] > 0 and t["compile_seconds"] >= 0
  assert len(t["runs_seconds"]) == 2


def test_matmul_gflops_is_positive():
  r = machine.matmul_gflops(64, repeats=2, precision="highest")
  assert r["n"] == 64 and r["dtype"] == "float32" and r["precision"] == "highest"
  assert _positive_finite(r["gflops"])
  assert r["gflops"] == pytest.approx(2 * 64 ** 3 / r["seconds"] / 1e9)


def test_parse_sections():
  assert settings.parse_sections("fit_many,machine") == ("machine", "fit_many")
  assert settings.parse_sections("") == ()
  assert settings.parse_sections(" scores , ") == ("scores",)
  assert settings.parse_sections(list(settings.SECTIONS)) == settings.SECTIONS
  with pytest.raises(ValueError, match="unknown sections"):
    settings.parse_sections("machine,gpu")


def test_default_settings_scale_with_backend():
  cpu, gpu = settings.default_settings("cpu"), settings.default_settings("gpu")
  assert cpu.matmul_n == 2048 and gpu.matmul_n == 8192
  assert gpu.grand_n_resnet > cpu.grand_n_resnet
  assert gpu.grand_chunk_resnet > cpu.grand_chunk_resnet
  assert cpu.fit_many_subset == gpu.fit_many_subset == 200
  assert cpu.fit_many_epochs == gpu.fit_many_epochs == 20


def test_to_json_makes_plain_values():
  out = suite.to_json({"a": np.float32(1.5), "b": (1, np.int64(2)), "c": float("nan"),
                           "d": jnp.arange(2), "e": [float("inf")]})
  assert out == {"a": 1.5, "b": [1, 2], "c": None, "d": [0, 1], "e": [None]}
  json.dumps(out, allow_nan=False)


def test_synthetic_fallback_when_mnist_is_absent(tmp_path, monkeypatch):
  monkeypatch.delenv("JAL_DATA_DIR", raising=False)
  monkeypatch.setattr(data, "_SHARED_DATA", tmp_path / "absent")
  images, info = data.load_images(configs.get("deepal_mnist_resnet"), data_dir=str(tmp_path))
  assert info["source"] == "synthetic" and "note" in info
  assert images.x_train.shape == (60000, 28, 28, 1)
  assert images.x_test.shape == (10000, 28, 28, 1)
  assert info["pool_size"] == 60000


# ----------------------------------------------------------------------------- sections


def test_machine_and_miniature_scores_sections():
  result = suite.run_benchmark(("machine", "scores"), _tiny_settings())
  text = json.dumps(result, allow_nan=False)  # Valid, strict JSON.
  result = json.loads(text)
  assert set(result) == {"meta", "machine", "scores"}
  assert result["meta"]["sections"] == ["machine", "scores"]
  assert _positive_finite(result["meta"]["wall_seconds"])

  machine = result["machine"]
  for key in ("jax_version", "backend", "device_kinds", "device_count", "cpu_count",
              "loadavg", "matmul", "matmul_highest"):
    assert key in machine, key
  assert machine["backend"] == "cpu" and machine["device_count"] >= 1
  assert _positive_finite(machine["matmul"]["gflops"])
  assert _positive_finite(machine["matmul_highest"]["gflops"])
  assert machine["matmul"]["n"] == 128

  scores = result["scores"]
  assert "resnet18" not in scores  # Both sizes 0: skipped.
  lenet = scores["lenet"]
  assert lenet["input_shape"] == [28, 28, 1] and lenet["params"] > 0
  for score, n, chunk in (("el2n", 40, 16), ("grand", 12, 8)):
    r = lenet[score]
    assert "error" not in r, r
    assert r["n"] == n and r["chunk_size"] == chunk
    assert _positive_finite(r["examples_per_second"])
    assert _positive_finite(r["seconds"]) and r["compile_seconds"] >= 0
    assert r["examples_per_second"] == pytest.approx(n / r["seconds"])
    assert len(r["runs_seconds"]) == 2


def test_failed_measurement_is_reported_not_raised():
  bad = dict(name="bad", model="lenet", input_shape=(28, 28, 1), kwargs={"no_such_option": 1},
             el2n_n=8, el2n_chunk=8, grand_n=0, grand_chunk=1)
  out = scores.scores_section([bad, dict(bad, name="skipped", el2n_n=0)])
  assert out["bad"]["error"].startswith("ValueError: model 'lenet' takes no option")
  assert "skipped" not in out


# ----------------------------------------------------------------------------- slow


@pytest.mark.slow
def test_deepal_protocol_one_round_tiny_pool():
  tiny = data.synthetic_dataset(260, 64, (28, 28, 1), 10, seed=0, name="tiny")
  out = protocol.deepal_protocol_section(tiny, rounds=1, epochs=1)
  json.dumps(suite.to_json(out), allow_nan=False)
  assert out["model"] == "resnet18" and out["config"]["model_kwargs"] == {"stem": "imagenet"}
  assert out["config"]["rounds"] == 1 and out["config"]["epochs"] == 1
  assert out["config"]["val_size"] == 0 and out["data"]["pool_size"] == 260
  assert [r["n_labeled"] for r in out["rounds"]] == [100, 200]
  r0, r1 = out["rounds"]
  assert r0["includes_compile"] and not r1["includes_compile"]
  assert _positive_finite(r0["train_seconds"]) and _positive_finite(r0["query_seconds"])
  assert r1["query_seconds"] == 0.0  # The last round trains and evaluates only.
  assert 0.0 <= r1["test_accuracy"] <= 1.0
  assert _positive_finite(out["pool_inference"]["examples_per_second"])
  assert "compile_free_mean" in out and "aubc" in out


@pytest.mark.slow
def test_fit_al_round_fit_many_miniature():
  res = fit.fit_section([dict(name="lenet", model="lenet", input_shape=(28, 28, 1),
                              n=70, batch_size=32, epochs=1)])
  assert _positive_finite(res["lenet"]["seconds_per_epoch"])
  assert res["lenet"]["steps_per_epoch"] == 3

  tiny = data.synthetic_dataset(400, 50, (28, 28, 1), 10, seed=1, name="tiny")
  al = protocol.al_round_section(tiny, init_size=20, budget=10)
  assert al["n_labeled"] == 20 and al["round"] == 0
  for k in ("train_seconds", "score_seconds", "select_seconds", "round_seconds"):
    assert _positive_finite(al[k]), k

  fm = fit.fit_many_section((1, 2), subset=30, epochs=2, batch_size=16, pool_size=100,
                                  seq_k=2)
  assert [r["k"] for r in fm["fit_many"]] == [1, 2]
  for r in fm["fit_many"]:
    assert _positive_finite(r["models_per_second"])
    assert _positive_finite(r["speedup_vs_sequential"])
  assert _positive_finite(fm["sequential"]["models_per_second"])


def test_settings_from_config_fill_backend_defaults():
  sizes = configs.get("bench").sizes
  assert settings.settings_from_config(sizes, "cpu") == settings.default_settings("cpu")
  sizes.matmul_n = 64
  sizes.fit_many_ks = (1, 2)
  got = settings.settings_from_config(sizes, "gpu")
  assert got.matmul_n == 64 and got.fit_many_ks == (1, 2)
  assert got.grand_n_resnet == settings.default_settings("gpu").grand_n_resnet
  smoke = settings.settings_from_config(configs.get("bench_smoke").sizes, "cpu")
  assert smoke == _tiny_settings()


def test_time_once_blocks_and_times():
  assert timing.seconds(lambda: jnp.ones(3) * 2) > 0


def test_every_bench_module_is_small():
  import pathlib

  import experiments.bench
  for f in pathlib.Path(experiments.bench.__file__).parent.glob("*.py"):
    assert len(f.read_text().splitlines()) < 400, f
