

serve

n1MatMul