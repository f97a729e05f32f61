/*
 * The smallest guest: its first instructions mark the boot timer (port 0x3f0, value 123) and
 * end the run through the debug-exit port (0xf4). Used to measure exec -> first guest instruction.
 */
#include "pvh_note.inc"

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
