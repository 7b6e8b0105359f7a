# make run:  set up (venv, requirements, MNIST), train the ten generators, then the classifiers,
#            then write the report (output/report.md).
# make run PRESET=fast OUTPUT=output-fast: the same with another preset, into another folder.
# make test: set up the same way and run the test suite.
# make setup TF=gpu: TensorFlow with CUDA for an NVIDIA GPU instead of the CPU-only build.
# make setup ENGINE=ray: also Ray, for --engine ray (a cluster; README: On a cluster). make test installs it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MNIST_DIR ?= data/mnist
PRESET ?= default
OUTPUT ?= output
# The TensorFlow build, cpu or gpu; an environment set up with TF=gpu stays gpu.
TF ?= $(if $(wildcard $(VENV)/.requirements-gpu),gpu,cpu)
$(if $(filter-out cpu gpu,$(TF)),$(error TF=$(TF): use TF=cpu (the default) or TF=gpu))
REQUIREMENTS := $(if $(filter gpu,$(TF)),requirements-gpu.txt,requirements.txt)
STAMP := $(VENV)/.requirements-$(TF)
ENGINE ?= local
$(if $(filter-out local ray,$(ENGINE)),$(error ENGINE=$(ENGINE): use ENGINE=local (the default) or ENGINE=ray))
RAY_STAMP := $(VENV)/.requirements-ray

.PHONY: setup run test bench-throughput bench-pipeline clean

# Switching builds uninstalls the other one first: both wheels hold the same `tensorflow` files.
$(STAMP): requirements.txt requirements-common.txt requirements-gpu.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	if [ "$(TF)" = gpu ] && $(PY) -m pip show tensorflow-cpu >/dev/null 2>&1; then $(PY) -m pip uninstall --quiet -y tensorflow-cpu; fi
	if [ "$(TF)" = cpu ] && [ -e $(VENV)/.requirements-gpu ]; then $(PY) -m pip uninstall --quiet -y tensorflow; fi
	$(PY) -m pip install --quiet --disable-pip-version-check -r $(REQUIREMENTS)
	rm -f $(VENV)/.requirements-*
	touch $(STAMP)

$(RAY_STAMP): $(STAMP) requirements-ray.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-ray.txt
	touch $(RAY_STAMP)

setup: $(STAMP) $(if $(filter ray,$(ENGINE)),$(RAY_STAMP))
	$(PY) main.py --fetch-mnist --mnist-dir $(MNIST_DIR)

RUN_FLAGS = --preset $(PRESET) --output-dir $(OUTPUT) --mnist-dir $(MNIST_DIR)

run: setup
	$(PY) main.py --train-digits 0,1,2,3,4,5,6,7,8,9 $(RUN_FLAGS)
	$(PY) main.py --train-mnist --compare $(RUN_FLAGS)
	$(PY) main.py --evaluate $(RUN_FLAGS)

# The tests cover --engine ray too, so they install Ray. They run in TEST_PROCESSES processes
# (pytest-xdist), each module whole in one of them, so module fixtures such as the Ray cluster
# are built once; `make test TEST_PROCESSES=0` runs them all in this one process. The modules go
# out slowest first (tests/conftest.py); without --no-loadscope-reorder, pytest-xdist would hand
# them out by their number of tests instead, and the slow modules of few tests would come last.
TEST_PROCESSES ?= 2
test: setup $(RAY_STAMP)
	$(PY) -m pytest -q -n $(TEST_PROCESSES) --dist loadfile --no-loadscope-reorder --durations=15 tests

clean:
	rm -rf $(VENV) .pytest_cache
