# moe_add_training_binary(NAME <target> CONFIG <config.json | model.mlir>
#                         [OPTIMIZER <moe-optimizer options>] [RECOMPUTE]
#                         [GATE_NORM <lambda>]
#                         [ADAPTIVE_AUX <moe-adaptive-aux options | ON>])
#
# Compiles a model into a training binary: moe-compile --emit-cpp runs the
# whole compiler pipeline (import, gate normalization, router fusion,
# autodiff, adaptive aux coefficients, optimizer, fusion, memory plan, C++);
# the generated C++ is linked with the runtime and the generic training
# driver.
function(moe_add_training_binary)
  cmake_parse_arguments(ARG "RECOMPUTE" "NAME;CONFIG;OPTIMIZER;GATE_NORM;ADAPTIVE_AUX" "" ${ARGN})
  if(NOT ARG_NAME OR NOT ARG_CONFIG)
    message(FATAL_ERROR "moe_add_training_binary needs NAME and CONFIG")
  endif()
  set(dir ${CMAKE_CURRENT_BINARY_DIR}/${ARG_NAME}.dir)
  set(source ${dir}/${ARG_NAME}.cpp)
  set(options "--optimizer=${ARG_OPTIMIZER}")
  if(ARG_RECOMPUTE)
    list(APPEND options --recompute)
  endif()
  if(DEFINED ARG_GATE_NORM)
    list(APPEND options "--gate-norm=${ARG_GATE_NORM}")
  endif()
  if(ARG_ADAPTIVE_AUX STREQUAL "ON")
    list(APPEND options --adaptive-aux)
  elseif(DEFINED ARG_ADAPTIVE_AUX)
    list(APPEND options "--adaptive-aux=${ARG_ADAPTIVE_AUX}")
  endif()
  add_custom_command(OUTPUT ${source}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${dir}
    COMMAND $<TARGET_FILE:moe-compile> ${ARG_CONFIG} ${options}
            --model-name ${ARG_NAME} --emit-cpp ${source}
    DEPENDS moe-compile ${ARG_CONFIG}
    COMMENT "Compiling ${ARG_NAME} to C++")
  add_executable(${ARG_NAME} ${source})
  target_link_libraries(${ARG_NAME} PRIVATE moert_driver moert_cpu OpenMP::OpenMP_CXX)
endfunction()
