/*
 * Real-mode probes for the KVM layer's own tests (tests/integration/kvm_test.cpp): a flat binary
 * loaded at 0x1000 and entered with CS = 0 at one of two entry points. Every report to the test is
 * a write to a port KVM hands back to it.
 *
 * 0x1000  ioeventfd probe: port 0x510 <- 0x41 (not the datamatch: an exit), port 0x510 <- 0x42
 *         (the datamatch: the eventfd, no exit), a byte written to MMIO 0x20000 (an eventfd of any
 *         length), then port 0x511 ("done").
 * 0x1100  interrupt probe: the PICs at vectors 0x28/0x70 with only IRQ 5 unmasked, the LAPIC in
 *         x2APIC mode, software-enabled, LINT0 as ExtINT; port 0x512 ("ready"), then sti and hlt.
 *         IRQ 5 (vector 0x2d) writes port 0x513; vector 0x40 (an MSI) writes port 0x514.
 */
	.code16
	.text
	.globl probe_start
probe_start:
io_probe:
	movw $0x510, %dx
	movb $0x41, %al
	outb %al, %dx
	movb $0x42, %al
	outb %al, %dx
	movw $0x2000, %bx
	movw %bx, %ds
	movb $7, (0)
	xorw %bx, %bx
	movw %bx, %ds
	movw $0x511, %dx
	outb %al, %dx
1:	hlt
	jmp 1b

	.org 0x100
irq_probe:
	cli
	xorw %ax, %ax
	movw %ax, %ds
	movw %ax, %ss
	movw $0x8000, %sp
	movw $(pic_handler - probe_start + 0x1000), (0x2d * 4)
	movw $0, (0x2d * 4 + 2)
	movw $(msi_handler - probe_start + 0x1000), (0x40 * 4)
	movw $0, (0x40 * 4 + 2)
	/* master PIC: edge, vectors 0x28-0x2f, slave on IRQ 2, 8086 mode; only IRQ 5 unmasked */
	movb $0x11, %al
	outb %al, $0x20
	movb $0x28, %al
	outb %al, $0x21
	movb $0x04, %al
	outb %al, $0x21
	movb $0x01, %al
	outb %al, $0x21
	movb $0xdf, %al
	outb %al, $0x21
	/* slave PIC: vectors 0x70-0x77, all masked */
	movb $0x11, %al
	outb %al, $0xa0
	movb $0x70, %al
	outb %al, $0xa1
	movb $0x02, %al
	outb %al, $0xa1
	movb $0x01, %al
	outb %al, $0xa1
	movb $0xff, %al
	outb %al, $0xa1
	/* x2APIC on (APIC base bits 10 and 11), spurious vector register enabled, LINT0 ExtINT */
	movl $0x1b, %ecx
	rdmsr
	orl $0xc00, %eax
	wrmsr
	xorl %edx, %edx
	movl $0x80f, %ecx
	movl $0x1ff, %eax
	wrmsr
	movl $0x835, %ecx
	movl $0x700, %eax
	wrmsr
	movw $0x512, %dx
	outb %al, %dx
	sti
2:	hlt
	jmp 2b

pic_handler:
	movw $0x513, %dx
	outb %al, %dx
	movb $0x20, %al
	outb %al, $0x20
	iret

msi_handler:
	movw $0x514, %dx
	outb %al, %dx
	movl $0x80b, %ecx
	xorl %eax, %eax
	xorl %edx, %edx
	wrmsr
	iret
