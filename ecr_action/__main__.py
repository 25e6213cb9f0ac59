from ecr_action.main import exit_now, main

exit_now(main())
