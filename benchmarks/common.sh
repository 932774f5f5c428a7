# Sourced by the benchmark scripts (from the repository root): what they
# share.

# report_machine: the CPU, the ISA flags that decide its kernels, and the
# OPENBLAS variables, which PyTorch's runs read (every run of a benchmark
# runs under the same ones).
report_machine() {
  echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | sed 's/^[^:]*: *//'), $(nproc) cores"
  echo "ISA: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' |
    grep -E '^(avx2|fma|avx512f|avx512_bf16|amx_bf16|amx_tile)$' | xargs)"
  echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-<unset>} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-<unset>}"
}

# character_corpus DATA WORK [KEY=VALUE...]: DATA's characters as tokens
# in WORK/tokens.bin (a character vocabulary, as nanoGPT's
# shakespeare_char), and in WORK/config.json the tiny MoE's config for that
# vocabulary with capacity factor 1.25 and the given keys changed.
character_corpus() {
  local data=$1 work=$2 vocab
  shift 2
  vocab=$(python3 benchmarks/char-tokens.py "$data" "$work/tokens.bin")
  python3 test/Inputs/edit-json.py examples/tiny-moe/config.json \
    vocab_size="$vocab" moe_capacity_factor=1.25 "$@" > "$work/config.json"
}
