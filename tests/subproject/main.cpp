// Links cuact as a parent project would (configured, not built, by the test).
#include <cuact/cuact.h>

int main() { return cuact::Activation::relu().kind == cuact::ActivationKind::relu ? 0 : 1; }
