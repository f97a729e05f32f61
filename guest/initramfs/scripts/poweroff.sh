# The guest powers off: kiln should exit 0.
echo "KILN-RESULT: about-to-poweroff ok"
poweroff -f
