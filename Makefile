# dreamzoo: `make setup`, then `make test`. See README.md.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SHARED ?= ../shared
export DREAMZOO_SHARED ?= $(SHARED)

.PHONY: setup test test-avx2 lint bench

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# A stamp: pip runs again only when pyproject.toml is newer than the last install.
SETUP_STAMP := $(VENV)/.dreamzoo-setup
setup: $(SETUP_STAMP)

$(SETUP_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[dev,check,ray,studio]'
	touch $@

test: setup
	$(PY) -m ruff check .
	$(PY) -m pytest -q

# The numerical tests again on AVX2 kernels only (PyTorch, oneDNN and MKL, which ignores the
# other two), whatever this CPU has.
AVX2_ONLY = ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2
test-avx2: setup
	$(AVX2_ONLY) $(PY) -c 'import torch; print("ATen CPU capability:", torch.backends.cpu.get_cpu_capability())'
	$(AVX2_ONLY) $(PY) -m pytest -q -m numerical

lint: setup
	$(PY) -m ruff check .

# The studio: the still dreamer in a local web page (http://127.0.0.1:7860; STUDIO_FLAGS,
# e.g. --port 8000 or --models DIR; FROM=<mirror folder>: its Zoo tab converts from there).
.PHONY: studio
studio: setup
	$(PY) -m dreamer studio $(MIRROR_FLAG) $(STUDIO_FLAGS)

# Every reader on FUZZ_CASES mutated files per format (findings in build/fuzz/findings.txt),
# then every subcommand on CLI_FUZZ_CASES generated command lines (Hypothesis; a random seed,
# or CLI_FUZZ_SEED; findings in build/cli-fuzz/findings.txt; the suite runs 300 on a fixed
# seed). `make cli-fuzz`: the second alone.
.PHONY: fuzz cli-fuzz
FUZZ_CASES ?= 10000
CLI_FUZZ_CASES ?= 3000
CLI_FUZZ = OMP_NUM_THREADS=1 $(PY) tests/cli_fuzz.py --cases $(CLI_FUZZ_CASES) \
	$(if $(CLI_FUZZ_SEED),--seed $(CLI_FUZZ_SEED))
fuzz: setup
	$(PY) tests/fuzz.py --cases $(FUZZ_CASES); status=$$?; $(CLI_FUZZ) && exit $$status

cli-fuzz: setup
	$(CLI_FUZZ)

# The lucent peer of bench/visualize.py, in its own folder (below).
LUCENT_PEER := build/bench-peers/lucent/torch_lucent-0.1.8.dist-info
# Every benchmark in bench/ (shared code in bench/_*.py): speed, precisions, memory; the
# feature visualisation one in its quick mode (its full run is `make bench-visualize`, hours).
bench: setup $(LUCENT_PEER)
	@for script in bench/[!_]*.py; do echo "== $$script"; \
		$(PY) $$script $$([ $$script = bench/visualize.py ] && echo --quick) || exit 1; done

# Feature visualisation against lucent and the deepdraw preset (bench/visualize.py; VIS_FLAGS,
# e.g. --quick). lucent is no dependency: pip puts it in its own folder, which only the
# benchmark reads.
# torch-lucent 0.1.8 asks for kornia<=0.4.1 (no wheel for this Python) and its own torch: it
# and kornia 0.5.11 go in without their dependencies, which the venv has; last, so that its
# dist-info (the target) is there only when both installs were.
$(LUCENT_PEER): | $(PY)
	$(PY) -m pip install -q --target build/bench-peers/lucent decorator ipython
	$(PY) -m pip install -q --target build/bench-peers/lucent --no-deps torch-lucent==0.1.8 \
		kornia==0.5.11

.PHONY: bench-visualize
bench-visualize: setup $(LUCENT_PEER)
	$(PY) bench/visualize.py $(VIS_FLAGS)

# The studio in Debian's chromium: latency from pressing Dream against the same dream in one
# process (bench/studio.py; also in `make bench`), and README's picture of the page after a
# dream (bench/studio.png, regenerated here, never by hand).
.PHONY: bench-studio studio-screenshot
bench-studio: setup
	$(PY) bench/studio.py

studio-screenshot: setup
	$(PY) bench/studio.py --screenshot bench/studio.png

# README's feature-visualisation sheets: six channels of GoogLeNet's inception_4c/output and
# six classes, from noise (fft, Lucid's transforms).
VISUALIZE_FLAGS = --model googlenet --size 192 --steps 128 --seed 0 --overwrite
.PHONY: visualize-sheets
visualize-sheets: setup
	$(PY) -m models googlenet $(MIRROR_FLAG)
	$(PY) -m dreamer visualize inception_4c/output --channels 0-5 $(VISUALIZE_FLAGS) \
		-o bench/visualize_channels.png
	$(PY) -m dreamer visualize --classes goldfish,flamingo,zebra,daisy,volcano,"tiger cat" \
		$(VISUALIZE_FLAGS) -o bench/visualize_classes.png

# --- model zoo (models/; the registry is models/registry.py) ---------------------------------
#   make convert                                  list the zoo
#   make convert MODEL=nin [FROM=../shared/models] fetch (or take from a mirror), verify, convert
#   make convert PROTOTXT=... CAFFEMODEL=... NAME=...   any other Caffe net (T7=... NAME=...)
#   make convert MODEL=nin FORMAT=onnx              also write models/nin/nin.onnx
#   make demo [FROM=../shared/models]             convert GoogLeNet and dream on a sample photo
#   make zoom-demo [FROM=../shared/models]        the same photo as an endless zoom (GIF, MP4)
.PHONY: convert demo
DEMO_DIR ?= build/demo
DEMO_MODEL ?= googlenet
# LAYER ITERATIONS RATE; RATE is in the image's standard deviations (tests/test_demo.py).
DEMO_DREAM ?= inception_4c/output 10 0.03
# Checks (without importing) that `make setup` has run; `convert` runs it otherwise.
INSTALLED = import importlib.util as u, sys; sys.exit(not all(map(u.find_spec, ("torch", "safetensors", "tqdm"))))
MIRROR_FLAG = $(if $(FROM),--from '$(FROM)')
CONVERT_FLAGS = $(if $(MODEL),'$(MODEL)') $(MIRROR_FLAG) \
	$(if $(PROTOTXT),--prototxt '$(PROTOTXT)') $(if $(CAFFEMODEL),--caffemodel '$(CAFFEMODEL)') \
	$(if $(T7),--t7 '$(T7)') $(if $(NAME),--name '$(NAME)') $(if $(FORMAT),--format '$(FORMAT)')

convert: | $(PY)
	@$(PY) -c '$(INSTALLED)' 2>/dev/null || $(MAKE) setup
	$(PY) -m models $(CONVERT_FLAGS)

demo: setup
	$(PY) -m models $(DEMO_MODEL) $(MIRROR_FLAG)
	$(PY) -m models.sample $(DEMO_DIR)/astronaut.png
	$(PY) -m dreamer $(DEMO_DIR)/astronaut.png $(DEMO_DREAM) --model $(DEMO_MODEL) \
		-o $(DEMO_DIR)/astronaut_dream.png
	@echo "demo dream written to $(DEMO_DIR)/astronaut_dream.png"

# A small animated example, generated (not committed): the demo photo zoomed into, as a GIF
# and, from the same frames folder (only encoded the second time), an MP4.
.PHONY: zoom-demo
ZOOM_DREAM ?= inception_4c/output 5 0.03 --octaves 3 --frames 24 --zoom 1.04 --rotate 0.5
zoom-demo: setup
	$(PY) -m models $(DEMO_MODEL) $(MIRROR_FLAG)
	$(PY) -m models.sample $(DEMO_DIR)/astronaut.png
	$(PY) -m dreamer zoom $(DEMO_DIR)/astronaut.png $(ZOOM_DREAM) --model $(DEMO_MODEL) \
		--fps 12 --frames-dir $(DEMO_DIR)/zoom_frames -o $(DEMO_DIR)/zoom.gif
	$(PY) -m dreamer zoom $(DEMO_DIR)/astronaut.png $(ZOOM_DREAM) --model $(DEMO_MODEL) \
		--fps 12 --frames-dir $(DEMO_DIR)/zoom_frames -o $(DEMO_DIR)/zoom.mp4
