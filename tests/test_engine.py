import jax
import numpy as np
import pytest
from helpers import assert_same_conv_step, assert_trees_close, fit, member_params, tiny_config

from rethinking_jax.engine import assemble, loop, program
from rethinking_jax.run import train

MIXED = "true_labels,random_labels,shuffled_pixels,random_pixels,gaussian"


def test_one_step_golden_values():
  """A regression guard: one SGD step of a fixed tiny config gives these numbers."""
  config = tiny_config(synthetic_train=16, num_epochs=1, randomizations="random_labels")
  run, result = fit(config)
  assert result.steps == 1
  record = result.history[0]
  params = member_params(result, 0)
  total = float(sum(np.sum(np.abs(x), dtype=np.float64) for x in jax.tree.leaves(params)))
  got = (record["train_loss"], record["train_acc"], record["test_loss"], total)
  print("golden", got)
  np.testing.assert_allclose(got, GOLDEN, rtol=2e-4)


GOLDEN = (1.498373031616211, 0.5625, 2.4141132831573486, 6004.6105616022605)


def test_members_trained_together_equal_separate_runs_exactly():
  """A member's numbers do not depend on the run it is in (its position, the other members).

  Run one member at a time (sequential), a run of six and six runs of one execute the very
  same single-member program on the same inputs, so they must agree bit for bit.
  """
  kinds = "random_labels,corrupt_labels:0.5,true_labels"
  config = tiny_config(randomizations=kinds, seeds="3,4", member_strategy="sequential")
  _, together = fit(config)
  specs = [(kind, seed) for kind in kinds.split(",") for seed in (3, 4)]
  for m in (0, 3, 5):
    kind, seed = specs[m]
    _, alone = fit(tiny_config(**{**dict(config.items()), "randomizations": kind,
                                  "seeds": str(seed)}))
    assert_trees_close(member_params(together, m), member_params(alone, 0), atol=0)
    assert ([together.history[m + len(specs) * e]["train_loss"] for e in range(2)]
            == [alone.history[e]["train_loss"] for e in range(2)])


def test_vmapped_conv_members_match_one_at_a_time():
  """Vmapped (grouped) convolutions and batch-norm against one member at a time, one step
  (see helpers.assert_same_conv_step for what is compared and why)."""
  config = tiny_config(model="inception_small", randomizations="random_labels,gaussian",
                       seeds="3", learning_rate=0.02, synthetic_train=16, synthetic_test=16,
                       num_epochs=1)
  runs = {s: fit(tiny_config(**{**dict(config.items()), "member_strategy": s}))[1]
          for s in ("vmap", "unrolled", "sequential")}
  assert all(result.steps == 1 for result in runs.values())
  for strategy in ("vmap", "unrolled"):
    assert_same_conv_step(assemble.prepare(config), runs[strategy], runs["sequential"])


def test_every_strategy_agrees():
  results = {}
  for strategy in ("vmap", "map", "unrolled", "sequential"):
    config = tiny_config(member_strategy=strategy, randomizations=MIXED, seeds="0",
                         train_transform="augment", synthetic_shape=(10, 10, 3), crop_size=8)
    _, results[strategy] = fit(config)
  for strategy in ("map", "unrolled", "sequential"):
    for m in range(5):
      assert_trees_close(member_params(results["vmap"], m),
                         member_params(results[strategy], m), atol=1e-5)
    keys = ("train_acc", "test_acc", "minibatch_loss")
    a = np.asarray([[r[k] for k in keys] for r in results["vmap"].history])
    b = np.asarray([[r[k] for k in keys] for r in results[strategy].history])
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_the_training_loss_is_the_mean_minibatch_loss_of_the_interval():
  """minibatch_loss (Figure 1a's quantity) is the train-mode loss averaged over the steps
  since the previous point: with the weights all but frozen and each interval one epoch of
  batches that cover the training split once, it equals the eval-mode loss over the split
  (a sum not reset between points, or divided by the wrong count, breaks this)."""
  for strategy in ("vmap", "sequential"):
    config = tiny_config(model="mlp_1x512", learning_rate=1e-9, num_epochs=3,
                         randomizations="true_labels,random_labels", member_strategy=strategy)
    _, result = fit(config)
    assert len(result.history) == 6
    for r in result.history:
      assert r["minibatch_loss"] == pytest.approx(r["train_loss"], rel=1e-4), (strategy, r)


@pytest.mark.parametrize("step_loop", ["scan", "host"])
def test_a_profiled_run_traces_its_steps_and_trains_the_same_numbers(tmp_path, step_loop):
  """profile_steps=2: the first two steps after the first evaluation point run under
  jax.profiler (a trace in WORKDIR/profile) as a chunk of their own, then the rest of that
  chunk: the same steps, so the same numbers as an unprofiled run."""
  import glob

  config = tiny_config(num_epochs=3, step_loop=step_loop, randomizations=MIXED)
  plain = train.train_and_evaluate(config, str(tmp_path / "plain"))
  config.profile_steps = 2
  profiled = train.train_and_evaluate(config, str(tmp_path / "profiled"))
  assert glob.glob(str(tmp_path / "profiled" / "profile" / "**" / "*.xplane.pb"),
                   recursive=True)
  assert not (tmp_path / "plain" / "profile").exists()
  losses = [m["train_loss"] for m in profiled["members"]]
  assert all(isinstance(v, float) for v in losses)
  assert losses == [m["train_loss"] for m in plain["members"]]


def test_same_config_same_numbers():
  config = tiny_config(randomizations=MIXED)
  _, a = fit(config)
  _, b = fit(config)
  assert [r["train_loss"] for r in a.history] == [r["train_loss"] for r in b.history]
  assert_trees_close(member_params(a, 2), member_params(b, 2), atol=0)


def test_mlp_memorizes_random_labels_and_test_is_near_chance():
  config = tiny_config(dataset="digits", randomizations="random_labels,true_labels",
                       batch_size=128, learning_rate=0.1, lr_decay_rate=1.0, num_epochs=300,
                       eval_every_epochs=10, stop_when_memorized=True, num_test=0,
                       eval_batch_size=1000)
  _, result = fit(config)
  random_final, true_final = result.status[0].final, result.status[1].final
  assert random_final["train_acc"] == 1.0 and result.status[0].steps_to_memorize is not None
  assert random_final["test_acc"] < 0.2  # chance is 0.1 on 360 test digits
  assert true_final["test_acc"] > 0.9
  assert result.epochs < 300  # stopped once every member memorized


def test_diverging_member_is_reported_and_others_finish():
  config = tiny_config(randomizations="true_labels", learning_rates="0.05,1e6", num_epochs=30,
                       eval_every_epochs=5, stop_when_memorized=True)
  _, result = fit(config)
  healthy, diverged = result.status
  assert diverged.diverged and not healthy.diverged
  assert healthy.steps_to_memorize is not None
  assert healthy.final["train_acc"] == 1.0
  assert result.epochs < 30  # the diverged member did not keep the run going


def test_learning_rate_staircase():
  spec = program.ProgramSpec(model=None, num_classes=10, input_shape=(1, 1, 1), crop=None,
                             transform="center_crop", kinds_present=(), batch_size=1,
                             steps_per_epoch=10, momentum=0.9, lr_decay_rate=0.5,
                             lr_decay_interval_steps=10, eval_batch_size=1)
  got = [float(program.learning_rate(spec, 0.1, s)) for s in (0, 9, 10, 25)]
  np.testing.assert_allclose(got, [0.1, 0.1, 0.05, 0.025])


def test_weight_decay_touches_kernels_only():
  params = {"Dense_0": {"kernel": np.full((2, 2), 2.0), "bias": np.ones(2)},
            "BatchNorm_0": {"bias": np.ones(3)}}
  assert float(program.l2_of_kernels(params)) == 0.5 * 4 * 4.0


def test_host_stepped_loop_equals_scanned_loop():
  results = {}
  for step_loop in ("scan", "host"):
    config = tiny_config(step_loop=step_loop, randomizations="random_labels,random_pixels",
                         train_transform="random_crop", synthetic_shape=(10, 10, 3), crop_size=8)
    _, results[step_loop] = fit(config)
    assert results[step_loop].steps == 2 * 4
  for m in range(2):
    assert_trees_close(member_params(results["scan"], m), member_params(results["host"], m),
                       atol=1e-5)


@pytest.mark.parametrize("step_loop", ["scan", "host"])
def test_evaluation_every_few_steps_trains_the_same_steps(step_loop):
  """eval_every_steps=3 with 4 steps per epoch: evaluation points inside epochs, the same
  training (bit for bit) as evaluating once per epoch."""
  base = dict(randomizations="random_labels,true_labels", step_loop=step_loop)
  _, per_epoch = fit(tiny_config(**base))
  _, per_3_steps = fit(tiny_config(**base, eval_every_steps=3))
  assert [r["step"] for r in per_3_steps.history[::2]] == [3, 6, 8]
  assert [r["epoch"] for r in per_3_steps.history[::2]] == [0.75, 1.5, 2]
  for m in range(2):
    assert_trees_close(member_params(per_epoch, m), member_params(per_3_steps, m), atol=0)


def test_a_run_stopped_inside_an_epoch_resumes_exactly():
  config = tiny_config(randomizations="random_labels,true_labels", eval_every_steps=3)
  _, whole = fit(config)
  run = assemble.prepare(config)
  first = run.fit(after_eval=lambda state, progress: progress.step == 3)  # mid-epoch
  assert first.interrupted and first.progress.step == 3 and first.progress.epoch == 0.75
  second = run.fit(state=first.state, progress=first.progress)
  assert second.progress.step == 8 and second.steps == 5
  for m in range(2):
    assert_trees_close(member_params(whole, m), member_params(second, m), atol=0)


def test_corrupt_test_labels_corrupts_the_test_labels_only():
  """The same training with and without corrupt_test_labels: train metrics equal; test
  accuracy of the p = 0.5 member falls (its test labels are half random), p = 0 unchanged."""
  base = dict(dataset="digits", randomizations="true_labels,corrupt_labels:0.5",
              batch_size=128, learning_rate=0.1, lr_decay_rate=1.0, num_epochs=30,
              eval_every_epochs=30, eval_batch_size=1000)
  _, plain = fit(tiny_config(**base))
  run, corrupt = fit(tiny_config(**base, corrupt_test_labels=True))
  for a, b in zip(plain.history, corrupt.history, strict=True):
    assert (a["train_loss"], a["train_acc"]) == (b["train_loss"], b["train_acc"])
  assert corrupt.history[0]["test_acc"] == plain.history[0]["test_acc"] > 0.9
  assert corrupt.history[1]["test_acc"] < plain.history[1]["test_acc"] - 0.2
  changed = np.mean(np.asarray(run.inputs.labels.test[1]) != run.dataset.test_labels)
  assert 0.35 < changed < 0.55  # p = 0.5 of them redrawn over 10 classes: ~45% differ


def test_a_corrupted_member_fits_its_clean_labels_before_its_corrupted_ones():
  """Arpit et al.'s memorization dynamics, split by the member's own corruption."""
  config = tiny_config(dataset="digits", randomizations="corrupt_labels:0.5,true_labels",
                       batch_size=128, learning_rate=0.1, lr_decay_rate=1.0, num_epochs=100,
                       eval_every_epochs=5, eval_batch_size=1000, stop_when_memorized=True)
  run, result = fit(config)
  corrupted = [r for r in result.history if r["member"] == 0]
  first = corrupted[0]
  assert first["train_acc_clean"] > first["train_acc_corrupted"] + 0.3  # clean ones first
  assert corrupted[-1]["train_acc_corrupted"] == 1.0  # then it memorizes the rest
  clean_share = 1 - float(np.mean(np.asarray(run.inputs.labels.train_corrupted[0])))
  np.testing.assert_allclose(first["train_acc"], clean_share * first["train_acc_clean"]
                             + (1 - clean_share) * first["train_acc_corrupted"], atol=1e-5)
  true = [r for r in result.history if r["member"] == 1]
  assert all(r["train_acc_corrupted"] is None and r["train_acc_clean"] == r["train_acc"]
             for r in true)


def test_auto_strategy_picks_what_was_measured_fastest():
  """strategies.resolve_strategy: the rule docs/running.md's table states, one case per row."""
  from rethinking_jax.engine.strategies import resolve_strategy
  assert resolve_strategy("auto", True, "gpu", spread_members=True) == "vmap"
  assert resolve_strategy("auto", False, "cpu", spread_members=False) == "sequential"
  assert resolve_strategy("auto", True, "cpu", spread_members=False) == "sequential"
  assert resolve_strategy("auto", True, "cpu", False, model="inception_small") == "sequential"
  assert resolve_strategy("auto", True, "cpu", False, model="alexnet_small") == "unrolled"
  assert resolve_strategy("auto", True, "gpu", False, model="alexnet_small") == "sequential"
  assert resolve_strategy("auto", False, "gpu", spread_members=False) == "vmap"
  assert resolve_strategy("auto", True, "gpu", spread_members=False) == "sequential"
  assert resolve_strategy("auto", True, "tpu", spread_members=False) == "sequential"
  assert resolve_strategy("map", True, "gpu", spread_members=False) == "map"


def test_an_auto_run_is_the_run_of_the_strategy_it_picked():
  config = tiny_config(randomizations="random_labels,true_labels", seeds="0")
  run, auto = fit(config)
  assert config.member_strategy == "auto" and run.programs.strategy == "sequential"  # CPU
  _, sequential = fit(tiny_config(randomizations="random_labels,true_labels", seeds="0",
                                  member_strategy="sequential"))
  assert auto.history == [dict(r, wall_time=a["wall_time"])
                          for r, a in zip(sequential.history, auto.history, strict=True)]


def test_max_errors_below_is_the_float32_boundary_of_the_threshold():
  """The most errors whose accuracy, computed as the evaluation computes it (float32
  correct / n), still reaches the threshold: one error more falls short."""
  acc = lambda correct, n: float(np.float32(correct) / np.float32(n))
  for n in (7, 64, 1000, 10_000, 50_000):
    for threshold in (1.0, 0.999, 0.95, 0.9, 0.75, 0.5, 0.1):
      errors = loop.max_errors_below(threshold, n)
      assert acc(n - errors, n) >= threshold, (n, threshold)
      assert errors == n or acc(n - errors - 1, n) < threshold, (n, threshold)
  assert loop.max_errors_below(1.0, 50_000) == 0
  assert loop.max_errors_below(0.95, 50_000) == 2499  # float32(47500 / 50000) < 0.95


def test_a_train_evaluation_stops_at_the_first_batch_past_the_errors_allowed():
  """evaluate_train_until against a per-example count in its visiting order: for every
  error budget it covers exactly the batches up to the first whose errors exceed it (all of
  them when none does), and its sums are those of the examples covered."""
  config = tiny_config(randomizations="random_labels", eval_batch_size=8, num_epochs=1)
  run, result = fit(config)
  spec, (labels, data) = run.programs.spec, run.inputs
  one = lambda tree: jax.tree.map(lambda x: x[0], tree)
  state, member, labels = one(result.state), one(run.members), one(labels)
  n, size = labels.train.shape[0], spec.eval_batch_size
  order = np.asarray(jax.random.permutation(jax.random.key(program._EVAL_ORDER_SEED), n))
  x, y = program.member_examples(spec, member, labels, data, order)
  logits = spec.model.apply(program._variables(state), x)
  wrong = np.asarray(jax.numpy.argmax(logits, -1) != y)
  errors_after = np.cumsum(wrong)[np.minimum(np.arange(size, n + size, size), n) - 1]
  total = int(wrong.sum())
  assert 0 < total < n
  for max_errors in range(-1, total + 2):
    out = np.asarray(program.evaluate_train_until(
        spec, state, member, (labels, jax.numpy.float32(max_errors)), data))
    past = np.flatnonzero(errors_after > max_errors)
    covered = n if len(past) == 0 else min((past[0] + 1) * size, n)
    assert out[program.SUMS] == covered, max_errors
    assert out[1] == covered - wrong[:covered].sum(), max_errors  # top-1 correct


@pytest.mark.parametrize("threshold,strategy", [(1.0, "sequential"), (0.8, "sequential"),
                                                (0.8, "vmap")])
def test_cheap_evaluation_finds_every_memorization_at_the_step_full_evaluation_does(
    threshold, strategy):
  """eval_full_every=1000 (no scheduled full point) against a full evaluation at every step:
  every member memorizes at the same step, the final and memorization records are the same
  numbers, and the points in between measured the test split not at all and the training
  split in part (vmapped: each member's stopping rule its own inside one batched loop)."""
  base = dict(randomizations="true_labels,random_labels,shuffled_pixels,random_pixels",
              eval_batch_size=8, eval_every_steps=1, num_epochs=40, member_strategy=strategy,
              memorize_threshold=threshold, stop_when_memorized=True)
  _, full = fit(tiny_config(**base))
  _, cheap = fit(tiny_config(**base, eval_full_every=1000))
  steps = [st.steps_to_memorize for st in full.status]
  assert all(s is not None for s in steps) and len(set(steps)) > 1, steps
  assert [st.steps_to_memorize for st in cheap.status] == steps
  assert [st.final for st in cheap.status] == [
      {**st.final, "wall_time": c.final["wall_time"]}
      for st, c in zip(full.status, cheap.status, strict=True)]
  by_point = {(r["step"], r["member"]): r for r in full.history}
  skipped = [r for r in cheap.history if r["test_acc"] is None]
  assert skipped and any(r["train_examples"] < 64 for r in skipped)
  budget = loop.max_errors_below(threshold, 64)
  for r in cheap.history:
    if r["test_acc"] is not None:  # a full point: the same numbers as the full run's
      assert r["train_examples"] == 64
      assert r["train_acc"] == by_point[(r["step"], r["member"])]["train_acc"]
    elif r["step"] < steps[r["member"]]:  # not memorized yet: measured until past its budget
      assert round((1 - r["train_acc"]) * r["train_examples"]) > budget, r
  assert {r["step"] for r in cheap.history if r["test_acc"] is not None} >= set(steps)


def test_a_stop_request_says_where_and_in_about_how_long_the_run_stops(monkeypatch):
  pace = loop.Pace(chunk_end_step=780)
  assert pace.wait().startswith("at step 780 (the first chunk, which also compiles")
  now = [100.0]
  monkeypatch.setattr(loop.time, "perf_counter", lambda: now[0])
  pace = loop.Pace(chunk_end_step=1560, chunk_started=90.0, chunk_seconds=50.0,
                   eval_seconds=4.0)
  assert pace.wait() == "at step 1560, in about 44 s"  # 40 s of the chunk + its evaluation
  now[0] = 200.0
  assert pace.wait() == "at step 1560, in about 4 s"   # overdue: the evaluation still to come


def test_the_progress_bar_of_a_run_that_stops_when_memorized_bounds_its_time():
  """Its total is the cap; it says so, and its remaining time is an upper bound."""
  settings = loop.FitSettings(num_epochs=1000, eval_every_epochs=5, progress=True)
  bar = loop._progress_bar(settings, 0)
  bar.update(80)
  text = str(bar)
  bar.close()
  assert text.startswith("until memorized, at most 1000 epochs:") and ", at most " in text
  fixed = loop._progress_bar(loop.FitSettings(num_epochs=10, eval_every_epochs=1,
                                              stop_when_memorized=False), 0)
  assert "until memorized" not in str(fixed)
  fixed.close()


def test_the_path_from_main_to_the_jitted_step_is_short(monkeypatch, tmp_path):
  """main -> train_and_evaluate -> _train_in -> loop.fit -> train_chunk -> _steps -> the
  compiled step: 6 calls (main's frame above train_and_evaluate is read from its source, not
  imported: importing main defines the command line's flags)."""
  import ast
  import inspect
  import os

  import rethinking_jax
  from rethinking_jax.engine import strategies

  chains = []
  compiled_fn = strategies.MemberPrograms._compiled_fn

  def recording(self, name, jitted, *args):
    compiled = compiled_fn(self, name, jitted, *args)
    if name != "chunk":
      return compiled

    def step(*a):
      frames = [f.function for f in inspect.stack()[1:]]
      chains.append(frames[:frames.index("train_and_evaluate") + 1][::-1])
      return compiled(*a)
    return step

  monkeypatch.setattr(strategies.MemberPrograms, "_compiled_fn", recording)
  train.train_and_evaluate(tiny_config(num_epochs=1), str(tmp_path))
  with open(os.path.join(os.path.dirname(rethinking_jax.__file__), "main.py")) as f:
    functions = {node.name: node for node in ast.walk(ast.parse(f.read()))
                 if isinstance(node, ast.FunctionDef)}

  def calls(function, callee):
    return any(isinstance(n, ast.Call) and getattr(n.func, "id", None) == callee
               for n in ast.walk(functions[function]))

  assert calls("main", "train_and_evaluate")
  chain = ["main", *chains[0]]
  assert chain == ["main", "train_and_evaluate", "_train_in", "fit", "train_chunk",
                   "_steps"], chain
  assert len(chain) <= 6  # calls from main to the jitted step, the last one included (#40)
