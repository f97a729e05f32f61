/*
 * kiln's tiny test guest: a PVH entry point (32-bit protected mode, paging off, EBX = start info)
 * that identity-maps the first GiB and the MMIO window at 3-4 GiB with user-accessible 2 MiB pages,
 * enters long mode and calls
 * tiny_main(start_info). Kept short: on nested-PVM hosts every CPL0 instruction is emulated.
 */
#define MSR_EFER 0xc0000080

#include "pvh_note.inc"

	.section .text.entry, "ax"
	.code32
	.globl pvh_start
pvh_start:
	movl %ebx, %esi			/* start info, kept for tiny_main */
	movl $stack_top, %esp

	/* PML4[0] -> PDPT, PDPT[0] -> PD, PD[i] = i * 2 MiB, present | writable | user | huge */
	movl $pdpt + 0x7, pml4
	movl $pd + 0x7, pdpt
	xorl %ecx, %ecx
2:	movl %ecx, %eax
	shll $21, %eax
	orl $0x87, %eax
	movl %eax, pd(,%ecx,8)
	incl %ecx
	cmpl $512, %ecx
	jne 2b

	/* PDPT[3] -> PD2: 3-4 GiB (kiln's device MMIO window), user-accessible, cache disabled. */
	movl $pd2 + 0x7, pdpt + 24
	xorl %ecx, %ecx
3:	movl %ecx, %eax
	shll $21, %eax
	orl $0xc0000097, %eax
	movl %eax, pd2(,%ecx,8)
	incl %ecx
	cmpl $512, %ecx
	jne 3b

	movl $pml4, %eax
	movl %eax, %cr3
	movl %cr4, %eax
	orl $0x620, %eax		/* PAE | OSFXSR | OSXMMEXCPT */
	movl %eax, %cr4
	movl $MSR_EFER, %ecx
	rdmsr
	orl $0x100, %eax		/* LME */
	wrmsr
	movl %cr0, %eax
	orl $0x80000001, %eax		/* PG | PE */
	movl %eax, %cr0
	lgdt gdt_desc
	ljmp $0x08, $long_mode

	.code64
long_mode:
	movw $0x10, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movq $stack_top, %rsp
	movl %esi, %edi
	call tiny_main
	/* tiny_main does not return; if it does, fail loudly through the debug-exit port. */
	movw $0xf4, %dx
	movb $99, %al
	outb %al, %dx
	hlt

	/* #BP: count and return (a trap: RIP already points past the int3). */
	.globl bp_handler
bp_handler:
	incq bp_count(%rip)
	iretq

	/* The LAPIC timer (timer N): count, EOI through the x2APIC, return. */
	.globl timer_handler
timer_handler:
	pushq %rax
	pushq %rcx
	pushq %rdx
	incq timer_count(%rip)
	movl $0x80b, %ecx
	xorl %eax, %eax
	xorl %edx, %edx
	wrmsr
	popq %rdx
	popq %rcx
	popq %rax
	iretq

	/* Any other exception: report its vector through the debug-exit port as 100 + vector. */
	.globl other_handler_ud, other_handler_gp
other_handler_ud:
	movb $106, %al
	jmp 3f
other_handler_gp:
	movb $113, %al
3:	movw $0xf4, %dx
	outb %al, %dx
	hlt

	/*
	 * syscall-fix: a #PF from CPL3 at the syscall entry (0x400000, a supervisor page) is what a
	 * SYSCALL becomes on nested PVM without kiln's redirect: exit 41; any other #PF: exit 42.
	 */
	.globl pf_handler
pf_handler:
	cmpq $0x400000, 8(%rsp)
	jne 1f
	testb $3, 16(%rsp)
	jz 1f
	movb $41, %al
	jmp 2f
1:	movb $42, %al
2:	movw $0xf4, %dx
	outb %al, %dx
	hlt

	/* The syscall entry (reached through the trampoline at LSTAR): note RCX, RSP and CS, then C. */
	.globl syscall_entry
syscall_entry:
	movq %rcx, syscall_rcx(%rip)
	movq %rsp, syscall_rsp(%rip)
	movw %cs, %ax
	movzwq %ax, %rax
	movq %rax, syscall_cs(%rip)
	movq $stack_top, %rsp
	call syscall_arrived
	hlt

	/* Drop to CPL3 with IOPL 3 and run user_fn(arg) there: rdi = fn, rsi = arg. */
	.globl enter_user
enter_user:
	movq %rsi, %r12
	pushq $0x1b			/* user data, RPL 3 */
	pushq $user_stack_top
	pushq $0x3002			/* IOPL 3, IF clear */
	pushq $0x23			/* user code, RPL 3 */
	pushq %rdi
	movq %r12, %rdi
	iretq

	/*
	 * Copied to 0x10000 by smp(): where an AP starts after STARTUP vector 0x10, in real mode with
	 * CS = 0x1000. It counts itself in at CS:0x100 and halts.
	 */
	.section .rodata
	.globl ap_trampoline, ap_trampoline_end
	.code16
ap_trampoline:
	movw %cs, %ax
	movw %ax, %ds
	lock incw 0x100
1:	cli
	hlt
	jmp 1b
ap_trampoline_end:
	.code64

	.data
	.balign 8
	.globl bp_count
bp_count: .quad 0
	.globl timer_count
timer_count: .quad 0
	.balign 16
gdt:
	.quad 0
	.quad 0x00af9a000000ffff	/* 0x08 kernel code 64 */
	.quad 0x00cf92000000ffff	/* 0x10 kernel data */
	.quad 0x00cff2000000ffff	/* 0x18 user data */
	.quad 0x00affa000000ffff	/* 0x20 user code 64 */
	.quad 0x0040f50000001003	/* 0x28 like Linux's CPUNODE segment: limit = node 1, CPU 3 */
	.globl gdt_tss
gdt_tss: .quad 0, 0			/* 0x30 a 64-bit TSS, filled in by tiny.c when user mode needs one */
gdt_end:
gdt_desc:
	.word gdt_end - gdt - 1
	.quad gdt

	.bss
	.balign 4096
	.globl pd
pml4: .skip 4096
pdpt: .skip 4096
pd: .skip 4096
pd2: .skip 4096
	.skip 16384
	.globl stack_top, user_stack_top
stack_top:
	.skip 16384
user_stack_top:
