/*
 * The smallest guest: its first instructions mark the boot timer (port 0x3f0, value 123) and
 * end the run through the debug-exit port (0xf4). Used to measure exec -> first guest instruction.
 */
	.section .note.pvh, "a", @note
	.balign 4
	.long 4, 4, 18
	.asciz "Xen"
	.balign 4
	.long pvh_start

	.section .text.entry, "ax"
	.code32
	.globl pvh_start
pvh_start:
	movw $0x3f0, %dx
	movb $123, %al
	outb %al, %dx
	movw $0xf4, %dx
	xorb %al, %al
	outb %al, %dx
1:	hlt
	jmp 1b
