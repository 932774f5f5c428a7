# moe_add_training_binary(NAME <target> CONFIG <config.json | model.mlir>
#                         [OPTIMIZER <moe-optimizer options>] [RECOMPUTE])
#
# Compiles a model into a training binary: moe-import (for a config.json),
# moe-opt --moe-autodiff --moe-optimizer --moe-fuse-elementwise
# --moe-plan-memory, moe-translate
# --emit=cpp, then the generated C++ linked with the runtime and the
# generic training driver.
function(moe_add_training_binary)
  cmake_parse_arguments(ARG "RECOMPUTE" "NAME;CONFIG;OPTIMIZER" "" ${ARGN})
  if(NOT ARG_NAME OR NOT ARG_CONFIG)
    message(FATAL_ERROR "moe_add_training_binary needs NAME and CONFIG")
  endif()
  set(dir ${CMAKE_CURRENT_BINARY_DIR}/${ARG_NAME}.dir)
  set(model ${dir}/model.mlir)
  set(train ${dir}/train.mlir)
  set(source ${dir}/${ARG_NAME}.cpp)
  if(ARG_CONFIG MATCHES "\\.json$")
    add_custom_command(OUTPUT ${model}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${dir}
      COMMAND $<TARGET_FILE:moe-import> ${ARG_CONFIG} -o ${model}
      DEPENDS moe-import ${ARG_CONFIG}
      COMMENT "Importing ${ARG_CONFIG}")
  else()
    set(model ${ARG_CONFIG})
  endif()
  set(autodiff "--moe-autodiff")
  if(ARG_RECOMPUTE)
    set(autodiff "--moe-autodiff=recompute=true")
  endif()
  add_custom_command(OUTPUT ${train}
    COMMAND $<TARGET_FILE:moe-opt> ${model} ${autodiff}
            "--moe-optimizer=${ARG_OPTIMIZER}" --moe-fuse-elementwise
            --moe-plan-memory=report=false
            -o ${train}
    DEPENDS moe-opt ${model}
    COMMENT "Differentiating and planning ${ARG_NAME}")
  add_custom_command(OUTPUT ${source}
    COMMAND $<TARGET_FILE:moe-translate> --emit=cpp --model-name ${ARG_NAME}
            ${train} -o ${source}
    DEPENDS moe-translate ${train}
    COMMENT "Emitting C++ for ${ARG_NAME}")
  add_executable(${ARG_NAME} ${source})
  target_link_libraries(${ARG_NAME} PRIVATE moert_driver OpenMP::OpenMP_CXX)
endfunction()
