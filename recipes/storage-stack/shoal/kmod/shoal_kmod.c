// SPDX-License-Identifier: GPL-2.0
/* shoal: the kernel side of the shoal storage stack (a marker module: it announces itself and
 * exports the stack's version for the user-space tools). */
#include <linux/init.h>
#include <linux/kernel.h>
#include <linux/module.h>

#define SHOAL_KMOD_VERSION "0.3.1"

static char *pool = "default";
module_param(pool, charp, 0444);
MODULE_PARM_DESC(pool, "the shoal pool this host serves");

const char *shoal_kmod_version(void) { return SHOAL_KMOD_VERSION; }
EXPORT_SYMBOL_GPL(shoal_kmod_version);

static int __init shoal_init(void) {
  pr_info("shoal: kernel module %s loaded (pool %s)\n", SHOAL_KMOD_VERSION, pool);
  return 0;
}

static void __exit shoal_exit(void) { pr_info("shoal: kernel module unloaded\n"); }

module_init(shoal_init);
module_exit(shoal_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("shoal storage stack kernel module");
MODULE_VERSION(SHOAL_KMOD_VERSION);
