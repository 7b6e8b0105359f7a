# make run:  set up (venv, requirements, MNIST), train the ten generators, then the classifiers.
# make test: set up the same way and run the test suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MNIST_DIR ?= data/mnist
STAMP := $(VENV)/.requirements-installed

.PHONY: setup run test bench-throughput bench-pipeline clean

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

setup: $(STAMP)
	$(PY) main.py --fetch-mnist --mnist-dir $(MNIST_DIR)

run: setup
	$(PY) main.py --train-digits 0,1,2,3,4,5,6,7,8,9 --mnist-dir $(MNIST_DIR)
	$(PY) main.py --train-mnist --compare --mnist-dir $(MNIST_DIR)

test: setup
	$(PY) -m pytest -q tests

clean:
	rm -rf $(VENV) .pytest_cache
