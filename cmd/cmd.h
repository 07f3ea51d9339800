/* SPDX-License-Identifier: MIT */
/* cmd: the `ringfence` command. Each subcommand is one function returning the process exit status;
 * only main.c exits. */
#ifndef RINGFENCE_CMD_H
#define RINGFENCE_CMD_H

/* ringfence run PROGRAM [ARGS]: exit status of the program, or 125/126/127 on platform, load or
 * unsupported-syscall failures (see run.c). */
int cmd_run(int argc, char **argv);
/* ringfence bench [--json] [--iterations N]: prints figures, each with its floor and ratio. */
int cmd_bench(int argc, char **argv);

#endif
