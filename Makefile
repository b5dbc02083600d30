# Two commands for a fresh Debian/Ubuntu machine: `make run` and `make test`.
VENV := .venv
BIN := $(VENV)/bin
TOOLS_VENV := .venv-tools
RUN_DIR := run

.PHONY: run test sample deploy-test clean

$(VENV)/.installed: setup.cfg pyproject.toml tools/bootstrap.sh
	bash tools/bootstrap.sh

# The project's own rendered sample (never third-party footage).
$(RUN_DIR)/sample.mp4: $(VENV)/.installed
	$(BIN)/python -m tools.render.sample $(RUN_DIR)

sample: $(RUN_DIR)/sample.mp4

# The appliance in desktop mode on the sample: prints the count, writes run/oled.gif and
# run/preview.mp4, and opens an OLED window when a display is present.
run: $(RUN_DIR)/sample.mp4
	rm -rf $(RUN_DIR)/state && mkdir -p $(RUN_DIR)/state
	GPIOZERO_PIN_FACTORY=mock $(BIN)/pushup-counter run --source $(RUN_DIR)/sample.mp4 \
		--display emulator --state-dir $(RUN_DIR)/state --record $(RUN_DIR) --log-level WARNING
	@$(BIN)/pushup-counter status --state-dir $(RUN_DIR)/state
	@echo "OLED animation: $(RUN_DIR)/oled.gif   annotated video: $(RUN_DIR)/preview.mp4"

# The training tools' own environment (torch 2.13.0 CPU, litert-torch, ai-edge-quantizer): the
# converter, flip and augmentation tests run in it, so CI proves the int8 export too.
$(TOOLS_VENV)/.installed: setup.cfg pyproject.toml tools/bootstrap.sh
	VENV=$(TOOLS_VENV) EXTRAS=tools bash tools/bootstrap.sh

test: $(VENV)/.installed $(TOOLS_VENV)/.installed
	$(BIN)/python -m pytest
	$(TOOLS_VENV)/bin/python -c "import torch, litert_torch, ai_edge_quantizer, ai_edge_litert"
	$(TOOLS_VENV)/bin/python -m pytest tests/test_tools_*.py

deploy-test: $(VENV)/.installed
	bash deploy/deploy-test.sh

# Keeps build/deploy/cache: the image's base root file system takes most of an hour to make.
clean:
	rm -rf $(RUN_DIR) dist *.egg-info
	if [ -d build ]; then find build -mindepth 1 -maxdepth 1 ! -name deploy -exec rm -rf {} +; fi
	if [ -d build/deploy ]; then find build/deploy -mindepth 1 -maxdepth 1 ! -name cache -exec rm -rf {} +; fi
