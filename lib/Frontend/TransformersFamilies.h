//===- TransformersFamilies.h - the families' table -------------*- C++ -*-===//
//
// Internal to lib/Frontend: the table of transformers' families that
// TransformersModels.cpp searches.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_FRONTEND_TRANSFORMERSFAMILIES_H
#define MOE_LIB_FRONTEND_TRANSFORMERSFAMILIES_H

#include "moe/Frontend/TransformersModels.h"

#include <vector>

namespace mlir::moe::detail {

/// Every family, in the order transformersModelOf prefers them.
const std::vector<TransformersModel> &families();

} // namespace mlir::moe::detail

#endif // MOE_LIB_FRONTEND_TRANSFORMERSFAMILIES_H
