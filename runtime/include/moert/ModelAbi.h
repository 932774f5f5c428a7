/*===- ModelAbi.h - the C ABI of a compiled model ----------------*- C -*-===*\
|*                                                                            *|
|* What moe-translate --emit=cpp generates and the training driver (and any   *|
|* other host) uses: a description of the model's globals (parameters and     *|
|* training state, laid out in one state region) and of its functions         *|
|* (train_step, train_micro_step, forward, logits), each called with the      *|
|* state, a scratch arena of the function's planned size, and its inputs and  *|
|* outputs in the order of the descriptors. Everything is plain C data; the   *|
|* functions are C++ and report bad input (e.g. a token id out of range) by   *|
|* throwing moert::Error. The state, the arenas, the inputs and the outputs   *|
|* live in the memory of the model's target (moe_target), which a host        *|
|* reaches only through the target's functions; on the CPU target that is     *|
|* host memory.                                                               *|
|*                                                                            *|
\*===----------------------------------------------------------------------===*/

#ifndef MOERT_MODELABI_H
#define MOERT_MODELABI_H

#include <stdint.h>

#define MOE_ABI_VERSION 12
/* The most host threads a model runs on (libgomp crashed creating 65536;
   1024 covers the largest hosts). */
#define MOE_MAX_THREADS 1024

enum moe_dtype { MOE_F32 = 0, MOE_F64 = 1, MOE_I32 = 2, MOE_I64 = 3 };
enum moe_init_kind { MOE_INIT_NORMAL = 0, MOE_INIT_CONSTANT = 1 };

typedef struct moe_tensor_desc {
  const char *name;
  int32_t dtype; /* enum moe_dtype */
  int32_t rank;
  const int64_t *shape;
} moe_tensor_desc;

typedef struct moe_global {
  moe_tensor_desc tensor; /* the Hugging Face style name and type */
  int64_t offset;         /* byte offset in the state region */
  int64_t bytes;
  int32_t trainable;
  int32_t init_kind;   /* enum moe_init_kind */
  double init_value;   /* std of a normal initializer, or the constant */
  int32_t sharded;     /* this rank's part, along axis 0, of a tensor split
                          over the ranks that share the experts (expert
                          weights): part rank % expert_ranks */
  const char *upcycle; /* how --init-from builds it from a dense checkpoint
                          (moert/Upcycle.h), or NULL */
  int32_t transient;   /* zero between train steps (a gradient accumulator):
                          not in checkpoints, zero when a run resumes */
  int32_t part_axes;   /* nonzero for the distributed optimizer's part of
                          a parameter's Adam moment: the mask of the grid
                          axes (bit i: axis i) whose ranks hold the equal,
                          flat parts, in group order, of a tensor shaped as
                          globals[part_of] */
  int32_t part_of;
  int32_t config_constant; /* a value of the config that no step stores (a
                              fixed aux-loss coefficient): not in
                              checkpoints, its initializer's when a run
                              resumes */
} moe_global;

typedef void (*moe_function_ptr)(void *state, void *arena,
                                 const void *const *inputs,
                                 void *const *outputs);

/* One kernel call of a function compiled with moe-compile --profile: what
   it is, what the cost model says one call costs, and the calls and time
   the function's runs have added up. */
typedef struct moe_profile_site {
  const char *kernel;   /* the kernel called, "copy" or "fused loop" */
  const char *location; /* the op's location: the model's module path */
  double flops;         /* per call; a multiply-add counts 2 */
  double bytes;         /* per call: every operand and result once */
  int64_t calls;
  int64_t nanoseconds;
} moe_profile_site;

typedef struct moe_function {
  const char *name;
  int64_t num_inputs;
  const moe_tensor_desc *inputs;
  int64_t num_outputs;
  const moe_tensor_desc *outputs;
  int64_t arena_bytes; /* the function's planned scratch memory */
  double model_flops;  /* per call on one rank: the cost model's matrix
                          products and attention (whole score matrices),
                          experts' at balanced routing; a multiply-add
                          counts 2 */
  moe_function_ptr call;
  int64_t num_profile_sites; /* 0 unless compiled with --profile */
  moe_profile_site *profile_sites;
} moe_function;

/* What differs between the targets a model is compiled for. */
typedef struct moe_target {
  const char *name; /* the #moe.target name: "cpu" */
  /* Runs the kernels on `threads` host threads (1 to MOE_MAX_THREADS; <= 0:
     every core, or the environment's count, OMP_NUM_THREADS, within the
     same bound) and returns how many it uses. */
  int32_t (*set_threads)(int32_t threads);
  /* Memory of the target for the state, arenas, inputs and outputs,
     `alignment`-aligned (moe_model.alignment), zeroed; null when there is
     none, or a thrown moert::AllocationError that says why. */
  void *(*allocate)(int64_t bytes, int64_t alignment);
  void (*release)(void *memory);
  /* Copies between host memory and the target's memory; a copy to the host
     waits for the functions called before it. */
  void (*copy_to_target)(void *destination, const void *source, int64_t bytes);
  void (*copy_to_host)(void *destination, const void *source, int64_t bytes);
  /* Waits until every function called so far has finished, and reports
     (throws) bad input that a function met on the target. */
  void (*synchronize)(void);
  /* A model compiled for ranks > 1 runs as one process per rank: joins the
     group of `ranks` ranks of which `expert_ranks` share the experts (see
     moe_model) and returns this process's rank (throws when the job's size
     differs); gathers the `bytes` bytes of host memory of every rank of the
     grid axes `grid_axes` (a mask, bit i: axis i), in their order; leaves
     the group. */
  int32_t (*join_group)(int32_t ranks, int32_t expert_ranks);
  void (*gather)(int32_t grid_axes, const void *local, int64_t bytes,
                 void *whole);
  void (*leave_group)(void);
  /* Seconds this process spent in collectives; < 0: not timed (CUDA). */
  double (*collective_seconds)(void);
  /* 1 when the target's memory is host memory and its functions have
     finished when they return: the host then reads and writes the state
     in place instead of through a copy. */
  int32_t host_memory;
} moe_target;

typedef struct moe_model {
  int32_t abi_version; /* MOE_ABI_VERSION */
  const char *name;
  const char *config_json; /* the config the model was imported from, or "" */
  /* That config's keys in one spelling, defaults spelled out (the
     frontend's mlir::moe::canonicalConfig, which the emitter calls), so
     that checkpoints compare models however their config files spell them;
     "" without a config or with one the importer refuses (IR by hand). */
  const char *canonical_config;
  /* The training settings it was compiled with: the options its passes
     recorded (moe.training) as "pass.key=value ...", or "". */
  const char *training;
  int64_t alignment; /* of the globals in the state and of arenas */
  int32_t ranks;     /* processes of an expert-parallel model, or 1 */
  /* Consecutive ranks that share each layer's experts, dividing ranks: the
     grid is [ranks] when they are equal, else [ranks / expert_ranks,
     expert_ranks], whose first axis holds replicas of the experts. */
  int32_t expert_ranks;
  /* Batches per optimizer step: a train step is micro_batches - 1 calls of
     train_micro_step, then one of train_step (gradient accumulation). */
  int32_t micro_batches;
  int64_t state_bytes;
  int64_t num_globals;
  const moe_global *globals;
  int64_t num_functions;
  const moe_function *functions;
  const moe_target *target;
} moe_model;

#ifdef __cplusplus
extern "C" {
#endif

/* Defined by the generated code. */
const moe_model *moe_get_model(void);

#ifdef __cplusplus
}
#endif

#endif /* MOERT_MODELABI_H */
