from eldercare_sim.cli import main

main()
