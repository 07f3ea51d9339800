/* SPDX-License-Identifier: MIT */
/* The fuzzer's only source of randomness: splitmix64, so a 64-bit seed replays a program exactly. */
#ifndef GUESTFUZZ_RNG_H
#define GUESTFUZZ_RNG_H

#include <stdint.h>

struct rng {
	uint64_t s;
};

static inline uint64_t rng_mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline uint64_t rng_next(struct rng *r)
{
	r->s += 0x9e3779b97f4a7c15ull;
	return rng_mix(r->s);
}

/* Uniform enough in [0, n) for n far below 2^32: the bias is invisible at fuzzing scale. */
static inline uint32_t rng_below(struct rng *r, uint32_t n)
{
	return (uint32_t)(((rng_next(r) >> 32) * n) >> 32);
}

/* True with probability 1/n. */
static inline int rng_one_in(struct rng *r, uint32_t n)
{
	return rng_below(r, n) == 0;
}

#endif
