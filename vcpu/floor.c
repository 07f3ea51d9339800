/* SPDX-License-Identifier: MIT */
/* Benchmark floors: the cheapest exits this host allows, measured on a vCPU of the platform. */
#include "vcpu.h"
