# Each target first makes sure libtorch is there (scripts/libtorch.sh); afterwards plain cargo works.
.PHONY: libtorch dynamic static_graph schedule lr_range_test test bench peers

libtorch:
	@scripts/libtorch.sh

dynamic: libtorch
	cargo run --release --example dynamic

static_graph: libtorch
	cargo run --release --example static_graph

schedule: libtorch
	cargo run --release --example schedule -- --base-learning-rate 0.5 --max-learning-rate 1 \
		--step-size-up 15 --step-size-down 5 --plot schedule.svg

lr_range_test: libtorch
	cargo run --release --example lr_range_test -- --plot lr_range_test.png

test: libtorch
	cargo test --release

bench: libtorch
	cargo bench

peers: libtorch
	bench/peers.sh
