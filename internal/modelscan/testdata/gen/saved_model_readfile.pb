

serve

n1ReadFile