# Each target first makes sure libtorch is there (scripts/libtorch.sh); afterwards plain cargo works.
.PHONY: libtorch dynamic static_graph test bench peers

libtorch:
	@scripts/libtorch.sh

dynamic: libtorch
	cargo run --release --example dynamic

static_graph: libtorch
	cargo run --release --example static_graph

test: libtorch
	cargo test --release

bench: libtorch
	cargo bench

peers: libtorch
	bench/peers.sh
