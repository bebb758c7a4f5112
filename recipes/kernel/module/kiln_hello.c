// SPDX-License-Identifier: GPL-2.0-only
/* the example profile's out-of-tree module: says hello when loaded */
#include <linux/module.h>
#include <linux/printk.h>

static int __init kiln_hello_init(void)
{
	pr_info("kiln_hello: loaded\n");
	return 0;
}

static void __exit kiln_hello_exit(void)
{
}

module_init(kiln_hello_init);
module_exit(kiln_hello_exit);
MODULE_LICENSE("GPL");
