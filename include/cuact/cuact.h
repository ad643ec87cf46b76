// cuact: fast, exact activation kernels for CUDA applications.
// Include this header and link cuact::cuact.
#pragma once

#include "cuact/activation.h"
#include "cuact/cross_entropy.h"
#include "cuact/dtype.h"
#include "cuact/fp8.h"
#include "cuact/fused.h"
#include "cuact/quantized.h"
#include "cuact/reference.h"
#include "cuact/softmax.h"
#include "cuact/status.h"
#include "cuact/version.h"
